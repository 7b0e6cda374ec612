"""Delivering job events to an app's webhook, signed per Standard Webhooks.

Headers `webhook-id` (the event id, stable across retries), `webhook-timestamp` and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the tenant's `whsec_`
secret). 2xx is delivered; 410 means the app wants no more; anything else (3xx included, since
redirects are not followed) is retried on the schedule in `retry.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import httpx
from standardwebhooks import Webhook

from shared.errors import NotFoundError, UnsafeUrlError
from shared.models.events import JobEvent
from shared.runtime import USER_AGENT, Runtime
from shared.webhooks.retry import delay_before_retry

TIMEOUT_SECONDS = 15.0
MAX_DELAY_SECONDS = 12 * 3600  # SQS's visibility-timeout ceiling


class Delivery(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: stop for good
    RETRY = "retry"
    EXHAUSTED = "exhausted"
    REFUSED = "refused"  # the URL is not allowed; retrying cannot help


@dataclass(frozen=True)
class DeliveryOutcome:
    result: Delivery
    status_code: int | None = None
    retry_in_seconds: int | None = None
    reason: str | None = None


def signed_headers(secret: str, event_id: str, body: str, now: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def tenant_secret(rt: Runtime, tenant_id: str) -> str:
    tenant = rt.keys.get_tenant(tenant_id)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_id}")
    return rt.signing_keys().tenant_webhook_secret(tenant_id, tenant.webhook_secret_version)


def deliver_event(rt: Runtime, body: str, tenant_id: str, attempt: int, http: httpx.Client) -> DeliveryOutcome:
    """One attempt (1-based) to deliver `body`, an event as published on SNS."""
    event = JobEvent.model_validate_json(body)
    url = event.data.request.webhook_url
    if url is None:
        return DeliveryOutcome(Delivery.REFUSED, reason="the job has no webhook_url")
    try:
        rt.url_guard.check(str(url), field="webhook_url", resolve=False)
        headers = signed_headers(tenant_secret(rt, tenant_id), event.id, body, rt.clock())
        # The answer's body is never read: a huge or endless one must not hold memory or the batch.
        with http.stream("POST", str(url), content=body.encode(), headers=headers) as response:
            status = response.status_code
            retry_after = response.headers.get("Retry-After", "")
    except UnsafeUrlError as exc:
        return DeliveryOutcome(Delivery.REFUSED, reason=exc.message)
    except httpx.HTTPError as exc:
        return _retry(attempt, None, f"{type(exc).__name__}", None)
    if 200 <= status < 300:
        return DeliveryOutcome(Delivery.DELIVERED, status_code=status)
    if status == 410:
        return DeliveryOutcome(Delivery.GONE, status_code=410, reason="the endpoint answered 410 Gone")
    return _retry(attempt, status, f"HTTP {status}", retry_after)


def _retry(attempt: int, status: int | None, reason: str, retry_after: str | None) -> DeliveryOutcome:
    delay = delay_before_retry(attempt)
    if delay is None:
        return DeliveryOutcome(Delivery.EXHAUSTED, status_code=status, reason=reason)
    if retry_after and retry_after.isdigit():
        delay = max(delay, int(retry_after))
    return DeliveryOutcome(
        Delivery.RETRY, status_code=status, retry_in_seconds=min(delay, MAX_DELAY_SECONDS), reason=reason
    )
