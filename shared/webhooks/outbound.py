"""One attempt to deliver a job event to an app's webhook, signed per Standard Webhooks.

Headers `webhook-id` (the event id, stable across retries), `webhook-timestamp` and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the tenant's `whsec_`
secret). 2xx is delivered; 410 means the app wants no more; anything else (3xx included, since
redirects are not followed) has failed and is retried on the schedule in `retry.py`.

An attempt has a hard wall-clock deadline (`webhook_deadline_seconds`): connect, TLS, sending the event and
receiving the answer's status line and headers together. An endpoint that trickles its answer is cut off
then, so one tenant's slow endpoint holds a delivery for that long at most.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import httpx
from standardwebhooks import Webhook

from shared.errors import NotFoundError, UnsafeUrlError
from shared.models.events import JobEvent
from shared.retry_after import retry_after_seconds
from shared.runtime import USER_AGENT, Runtime


class Delivery(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: stop for good
    FAILED = "failed"  # try again later (the schedule decides when, and whether)
    REFUSED = "refused"  # the URL is not allowed; retrying cannot help


@dataclass(frozen=True)
class DeliveryOutcome:
    result: Delivery
    status_code: int | None = None
    retry_after: float | None = None  # seconds the endpoint asked us to wait (Retry-After)
    reason: str | None = None
    cut_off: bool = False  # the endpoint was still answering when the deadline passed


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


def webhook_url(body: str) -> tuple[JobEvent, str | None]:
    """The event a queued message holds and the URL it goes to (None when the job has none)."""
    event = JobEvent.model_validate_json(body)
    url = event.data.request.webhook_url
    return event, str(url) if url is not None else None


def deliver_event(rt: Runtime, body: str, tenant_id: str) -> DeliveryOutcome:
    """One attempt to deliver `body`, an event as published on SNS, within the delivery deadline."""
    event, url = webhook_url(body)
    if url is None:
        return DeliveryOutcome(Delivery.REFUSED, reason="the job has no webhook_url")
    deadline = rt.settings.webhook_deadline_seconds
    started = time.monotonic()
    try:
        rt.url_guard.check(url, field="webhook_url", resolve=False)
        headers = signed_headers(tenant_secret(rt, tenant_id), event.id, body, rt.clock())
        # The answer's body is never read: a huge or endless one must not hold memory or the batch.
        with (
            rt.outbound_http(timeout=deadline, follow_redirects=False, deadline_seconds=deadline) as http,
            http.stream("POST", url, content=body.encode(), headers=headers) as response,
        ):
            status = response.status_code
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), now=rt.clock())
    except UnsafeUrlError as exc:
        return DeliveryOutcome(Delivery.REFUSED, reason=exc.message)
    except httpx.TimeoutException as exc:
        cut_off = time.monotonic() - started >= deadline * 0.99
        reason = f"cut off at the {deadline:g} s deadline" if cut_off else f"{type(exc).__name__}"
        return DeliveryOutcome(Delivery.FAILED, reason=reason, cut_off=cut_off)
    except httpx.HTTPError as exc:
        return DeliveryOutcome(Delivery.FAILED, reason=type(exc).__name__)
    if 200 <= status < 300:
        return DeliveryOutcome(Delivery.DELIVERED, status_code=status)
    if status == 410:
        return DeliveryOutcome(Delivery.GONE, status_code=410, reason="the endpoint answered 410 Gone")
    return DeliveryOutcome(Delivery.FAILED, status_code=status, retry_after=retry_after, reason=f"HTTP {status}")
