"""Lazily created boto3 clients, one per service per process (endpoint from AWS_ENDPOINT_URL if set)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests and the local stack switch endpoints)."""
    client.cache_clear()
