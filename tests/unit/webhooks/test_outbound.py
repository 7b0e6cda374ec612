"""Standard Webhooks signing, checked with the reference library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.signing import SigningKeys
from shared.webhooks.outbound import signed_headers

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
