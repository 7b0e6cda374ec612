"""`webhooks.verify`: the relay's own signer and the reference Standard Webhooks library agree with it."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from kling_relay import (
    JobEvent,
    KlingRelay,
    WebhookPayloadError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    webhooks,
)
from standardwebhooks import Webhook

from shared.models.common import JobStatus
from shared.models.events import event_from_record
from shared.signing import SigningKeys
from shared.webhooks.outbound import signed_headers
from tests.fixtures.jobs import build_job

KEYS = SigningKeys("k" * 64)
SECRET = KEYS.tenant_webhook_secret("tenant-a", 1)
OTHER_SECRET = KEYS.tenant_webhook_secret("tenant-a", 2)


def delivery(at: datetime | None = None, secret: str = SECRET) -> tuple[bytes, dict[str, str], str]:
    """A job event as the relay's deliver function sends it: body, headers, event id."""
    event = event_from_record(build_job(status=JobStatus.RUNNING, progress=30, version=2))
    body = event.model_dump_json()
    headers = signed_headers(secret, event.id, body, at or datetime.now(UTC))
    return body.encode(), headers, event.id


def test_a_delivery_from_the_relay_verifies_into_a_typed_event() -> None:
    body, headers, event_id = delivery()
    event = webhooks.verify(body, headers, SECRET)
    assert isinstance(event, JobEvent)
    assert event.id == event_id == headers["webhook-id"]
    assert event.type == "job.running"
    assert event.data.progress == 30
    assert KlingRelay("https://relay.test/v1", "k").webhooks.verify(body.decode(), headers, SECRET) == event


def test_the_reference_library_and_the_sdk_agree_both_ways() -> None:
    body, _, event_id = delivery()
    now = datetime.now(UTC)
    reference = Webhook(SECRET)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": reference.sign(event_id, now, body.decode()),
    }
    assert webhooks.verify(body, headers, SECRET).id == event_id
    ours = webhooks.sign(body, secret=SECRET, message_id=event_id, timestamp=int(now.timestamp()))
    assert ours == headers["webhook-signature"]
    assert reference.verify(body, {**headers, "webhook-signature": ours})["id"] == event_id


def test_headers_are_read_whatever_their_case() -> None:
    body, headers, _ = delivery()
    shouted = {name.upper(): value for name, value in headers.items()}
    assert webhooks.verify(body, shouted, SECRET).type == "job.running"


def test_one_matching_signature_among_several_is_enough() -> None:
    body, headers, _ = delivery()
    rotated = f"v1,{base64.b64encode(b'x' * 32).decode()} v2,whatever {headers['webhook-signature']}"
    assert webhooks.verify(body, {**headers, "webhook-signature": rotated}, SECRET)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("body", WebhookSignatureError),
        ("id", WebhookSignatureError),
        ("timestamp", WebhookSignatureError),
        ("secret", WebhookSignatureError),
        ("v2-only", WebhookSignatureError),
        ("garbage-signature", WebhookSignatureError),
        ("no-signature", WebhookVerificationError),
        ("no-id", WebhookVerificationError),
        ("no-timestamp", WebhookVerificationError),
        ("timestamp-not-a-number", WebhookTimestampError),
    ],
)
def test_anything_altered_or_missing_is_refused(change: str, error: type[Exception]) -> None:
    body, headers, _ = delivery()
    secret = SECRET
    if change == "body":
        body = body.replace(b'"progress":30', b'"progress":99')
    elif change == "id":
        headers["webhook-id"] = "evt_" + "0" * 32
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    elif change == "secret":
        secret = OTHER_SECRET
    elif change == "v2-only":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    elif change == "garbage-signature":
        headers["webhook-signature"] = "v1,not base64!"
    elif change == "timestamp-not-a-number":
        headers["webhook-timestamp"] = "yesterday"
    else:
        del headers[f"webhook-{change.removeprefix('no-')}"]
    with pytest.raises(error):
        webhooks.verify(body, headers, secret)


def test_a_stale_or_future_delivery_is_refused_and_the_tolerance_is_adjustable() -> None:
    body, headers, _ = delivery(at=datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(WebhookTimestampError, match="stale"):
        webhooks.verify(body, headers, SECRET)
    assert webhooks.verify(body, headers, SECRET, tolerance=600).type == "job.running"
    body, headers, _ = delivery(at=datetime.now(UTC) + timedelta(minutes=6))
    with pytest.raises(WebhookTimestampError, match="future"):
        webhooks.verify(body, headers, SECRET)
    stamp = int(headers["webhook-timestamp"])
    assert webhooks.verify(body, headers, SECRET, now=stamp + 299.0)
    with pytest.raises(WebhookTimestampError):
        webhooks.verify(body, headers, SECRET, now=stamp + 301.0)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!not-base64"])
def test_a_missing_or_malformed_secret_fails_closed(secret: str) -> None:
    body, headers, _ = delivery()
    with pytest.raises(WebhookVerificationError, match="secret"):
        webhooks.verify(body, headers, secret)


def test_a_signed_body_that_is_not_an_event_is_a_payload_error() -> None:
    now = int(time.time())
    body = b'{"hello": "world"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.sign(body, secret=SECRET, message_id="msg_1", timestamp=now),
    }
    with pytest.raises(WebhookPayloadError):
        webhooks.verify(body, headers, SECRET)
