"""boto3 clients with this system's settings (endpoint from AWS_ENDPOINT_URL if set), and how long the
credentials they sign with last. Clients are kept by their owner: the function's `Runtime` (one per process,
so one client per service) or the repository or CLI command that made one."""

from __future__ import annotations

from datetime import datetime
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


def credentials_expiry(session: boto3.Session | None = None) -> datetime | None:
    """When the credentials this process signs with (the default session's, which every client here uses) stop
    working, when they say: role sessions read from the container credentials endpoint (SnapStart) or an
    assumed role do; long-term keys, and session keys handed over in the environment alone, do not (None).

    Credentials close to their expiry are refreshed first, so the answer is about the ones a signature made
    now would use.
    """
    if session is None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    credentials = session.get_credentials() if session is not None else None
    if credentials is None:
        return None
    credentials.get_frozen_credentials()  # refreshes credentials that are about to expire
    # Only botocore's RefreshableCredentials know their expiry, and they expose it under this name alone.
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry if isinstance(expiry, datetime) else None
