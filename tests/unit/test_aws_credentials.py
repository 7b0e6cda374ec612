"""How long the credentials clients sign with last, read from the boto3 session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from botocore.credentials import Credentials, RefreshableCredentials

from shared import aws

EXPIRY = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def session_with(credentials: Credentials) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    session._session._credentials = credentials  # what the credential chain would have resolved
    return session


def role_session(expiry: datetime, refreshed_expiry: datetime | None = None) -> RefreshableCredentials:
    def metadata(until: datetime) -> dict[str, str]:
        return {"access_key": "AKIA", "secret_key": "s", "token": "t", "expiry_time": until.isoformat()}

    return RefreshableCredentials.create_from_metadata(
        metadata(expiry), refresh_using=lambda: metadata(refreshed_expiry or expiry), method="test"
    )


def test_role_session_credentials_report_their_expiry() -> None:
    assert aws.credentials_expiry(session_with(role_session(EXPIRY))) == EXPIRY


def test_credentials_about_to_expire_are_refreshed_before_their_expiry_is_read() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)
    later = datetime.now(UTC) + timedelta(hours=1)

    assert aws.credentials_expiry(session_with(role_session(soon, later))) == later


def test_long_term_keys_have_no_expiry() -> None:
    assert aws.credentials_expiry(session_with(Credentials("AKIA", "secret"))) is None
