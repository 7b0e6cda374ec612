"""Kie.ai callback signatures: Base64 HMAC-SHA256 over `taskId + "." + timestamp`.

Kie signs only the task id and the `X-Webhook-Timestamp` value, never the body, so a valid
signature proves that Kie sent a callback about this task at this time, not what the body says.
Kie specifies no timestamp tolerance; the window is our policy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from shared.errors import CallbackRejectedError

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"

# Integer Unix seconds; the length cap keeps absurd values out of int() and the window arithmetic.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign_kie_callback(hmac_key: str, task_id: str, timestamp: int | str) -> str:
    """The `X-Webhook-Signature` value Kie sends for `task_id` at `timestamp` (as sent in the header)."""
    if not hmac_key:
        raise ValueError("a Kie webhook HMAC key is required to sign")
    # surrogatepass: a task id parsed from a JSON "\ud800" escape must give a mismatch, not a crash.
    message = f"{task_id}.{timestamp}".encode("utf-8", "surrogatepass")
    digest = hmac.new(hmac_key.encode("utf-8", "surrogatepass"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_kie_signature(
    *,
    hmac_key: str | None,
    task_id: str | None,
    timestamp: str | None,
    signature: str | None,
    now: float,
    window_seconds: int,
) -> None:
    """Accept a Kie callback signature or raise `CallbackRejectedError` with a short reason.

    Fails closed: a missing key, header or task id is a rejection, never a pass.
    """
    if not hmac_key:
        raise CallbackRejectedError("missing_key")
    if not task_id:
        raise CallbackRejectedError("missing_task_id")
    timestamp = (timestamp or "").strip()
    signature = (signature or "").strip()
    if not timestamp:
        raise CallbackRejectedError("missing_timestamp")
    if not signature:
        raise CallbackRejectedError("missing_signature")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise CallbackRejectedError("bad_timestamp")
    sent_at = int(timestamp)
    if sent_at < now - window_seconds:
        raise CallbackRejectedError("stale_timestamp")
    if sent_at > now + window_seconds:
        raise CallbackRejectedError("future_timestamp")
    expected = sign_kie_callback(hmac_key, task_id, timestamp)
    # A Base64 value is ASCII; compare_digest would raise on anything else rather than say no.
    if not signature.isascii() or not hmac.compare_digest(expected, signature):
        raise CallbackRejectedError("bad_signature")
