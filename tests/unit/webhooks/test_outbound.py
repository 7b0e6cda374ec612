"""Standard Webhooks signing, checked with the reference library, and the retry decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.signing import SigningKeys
from shared.webhooks.outbound import MAX_DELAY_SECONDS, Delivery, _retry, signed_headers
from shared.webhooks.retry import MAX_DELIVERY_ATTEMPTS, RETRY_DELAYS_SECONDS

KEYS = SigningKeys("k" * 64)
SECRET = KEYS.tenant_webhook_secret("tenant-a", 1)
BODY = '{"id":"evt_0123456789abcdef0123456789abcdef","type":"job.queued"}'
EVENT_ID = "evt_0123456789abcdef0123456789abcdef"


def test_signed_headers_verify_with_the_reference_library() -> None:
    now = datetime.now(UTC)
    headers = signed_headers(SECRET, EVENT_ID, BODY, now)
    assert headers["webhook-id"] == EVENT_ID
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(BODY, headers) == {"id": EVENT_ID, "type": "job.queued"}


@pytest.mark.parametrize(
    "secret",
    [KEYS.tenant_webhook_secret("tenant-b", 1), KEYS.tenant_webhook_secret("tenant-a", 2)],
    ids=["other-tenant", "rotated"],
)
def test_another_secret_does_not_verify(secret: str) -> None:
    headers = signed_headers(SECRET, EVENT_ID, BODY, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(BODY, headers)


def test_the_signature_covers_the_id_and_the_body() -> None:
    headers = signed_headers(SECRET, EVENT_ID, BODY, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace("queued", "running"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, {**headers, "webhook-id": "evt_" + "f" * 32})


def test_an_old_signature_is_refused_by_the_receiver() -> None:
    headers = signed_headers(SECRET, EVENT_ID, BODY, datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, headers)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, RETRY_DELAYS_SECONDS[0]),
        (1, "120", 120),
        (5, "120", RETRY_DELAYS_SECONDS[4]),
        (1, str(10**9), MAX_DELAY_SECONDS),
        (1, "-5", RETRY_DELAYS_SECONDS[0]),
        (1, "1.5", RETRY_DELAYS_SECONDS[0]),
    ],
)
def test_a_retry_waits_the_schedule_or_a_longer_retry_after_within_the_cap(
    attempt: int, retry_after: str | None, expected: int
) -> None:
    outcome = _retry(attempt, 503, "HTTP 503", retry_after)
    assert outcome.result is Delivery.RETRY
    assert outcome.retry_in_seconds == expected
    assert outcome.status_code == 503


def test_the_last_attempt_is_exhausted() -> None:
    outcome = _retry(MAX_DELIVERY_ATTEMPTS, None, "ConnectError", "60")
    assert outcome.result is Delivery.EXHAUSTED
    assert outcome.retry_in_seconds is None
    assert outcome.reason == "ConnectError"
