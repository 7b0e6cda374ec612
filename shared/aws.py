"""Lazily created boto3 clients, one per service per process (endpoint from AWS_ENDPOINT_URL if set)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)
# Presigned download links must be SigV4 (SigV2 is deprecated and refused in newer regions). Completing a
# multipart upload of a large video can keep S3 working for a while before it answers.
_PER_SERVICE = {"s3": Config(signature_version="s3v4", read_timeout=120)}


def new_client(service: str) -> Any:
    """A boto3 client with this system's retry, timeout and signing settings."""
    config = _CONFIG.merge(_PER_SERVICE[service]) if service in _PER_SERVICE else _CONFIG
    return boto3.client(service, config=config)


@cache
def client(service: str) -> Any:
    return new_client(service)


def reset_clients() -> None:
    """Forget cached clients (tests and the local stack switch endpoints)."""
    client.cache_clear()
