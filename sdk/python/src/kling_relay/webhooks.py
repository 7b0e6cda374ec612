"""Verifying the relay's webhook deliveries (Standard Webhooks, HMAC-SHA256).

Each delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` entries) and is signed with the
tenant's `whsec_<base64>` secret. Pass the body exactly as received: bytes, before any JSON parsing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from pydantic import ValidationError

from kling_relay.errors import (
    WebhookPayloadError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
)
from kling_relay.models import JobEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300.0
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _secret_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip()
        text = text.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookVerificationError(f"the webhook secret is not base64 after {SECRET_PREFIX!r}") from exc
    if not key:
        raise WebhookVerificationError("the webhook secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if not value:
        raise WebhookVerificationError(f"the {name} header is missing")
    return value


def sign(body: bytes | str, *, secret: str | bytes, message_id: str, timestamp: int) -> str:
    """The `webhook-signature` value for a body (for tests of your own webhook handler)."""
    payload = body.encode() if isinstance(body, str) else body
    signed = f"{message_id}.{timestamp}.".encode() + payload
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> JobEvent:
    """The delivered event, once its signature and timestamp hold; `WebhookVerificationError` otherwise.

    `tolerance` is how many seconds `webhook-timestamp` may be from now either way (older deliveries
    are refused as replays). The same event may arrive more than once: deduplicate on `event.id`.
    """
    key = _secret_bytes(secret)
    message_id, stamp, signatures = (_header(headers, name) for name in _HEADERS)
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise WebhookTimestampError(f"webhook-timestamp {stamp[:40]!r} is not Unix seconds") from None
    skew = (time.time() if now is None else now) - timestamp
    if skew > tolerance:
        raise WebhookTimestampError(f"the delivery is {skew:.0f} s old (more than {tolerance:.0f} s): refused as stale")
    if -skew > tolerance:
        raise WebhookTimestampError(f"the delivery is timestamped {-skew:.0f} s in the future")
    payload = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, f"{message_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    if not any(hmac.compare_digest(expected, given) for given in _v1_signatures(signatures)):
        raise WebhookSignatureError("no webhook-signature matches the body signed with this secret")
    try:
        return JobEvent.model_validate_json(payload)
    except ValidationError as exc:
        raise WebhookPayloadError(f"the signed body is not a job event: {exc.error_count()} problem(s)") from exc


def _v1_signatures(header: str) -> list[bytes]:
    found = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


class Webhooks:
    """`client.webhooks`: the same verification as `kling_relay.webhooks.verify`."""

    def verify(
        self,
        body: bytes | str,
        headers: Mapping[str, str],
        secret: str | bytes,
        *,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        now: float | None = None,
    ) -> JobEvent:
        return verify(body, headers, secret, tolerance=tolerance, now=now)
