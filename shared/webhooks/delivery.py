"""A queued job event, taken from the webhook queue to the app's endpoint or put back for later.

For each message: check the URL, ask the endpoint's circuit breaker, attempt the delivery (within the
deadline), tell the breaker how it went, and when the message is to be tried again hide it on the queue for as
long as the retry schedule, the endpoint's `Retry-After` and its breaker say. The deliver function runs this
for every message of a batch at the same time, so a slow endpoint delays no other message of its batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import UnsafeUrlError
from shared.gateways.delivery_queue import DeliveryQueue
from shared.repository.endpoints import Endpoint, EndpointHealthRepository
from shared.runtime import Runtime
from shared.webhooks.breaker import Admission, CircuitBreaker
from shared.webhooks.outbound import Delivery, DeliveryOutcome, deliver_event, webhook_url
from shared.webhooks.retry import delay_before_retry, hidden_for


@dataclass(frozen=True)
class QueuedEvent:
    """What the deliver function needs of an SQS record."""

    body: str
    tenant_id: str | None
    attempt: int  # the queue's receive count: 1 on the first attempt
    sent_at: float | None  # epoch seconds the message was queued
    queue_arn: str
    receipt_handle: str


class Result(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410 from the app: dropped
    REFUSED = "refused"  # nothing to deliver to, or a URL we refuse: dropped
    RETRY = "retry"  # failed; hidden until its next attempt
    EXHAUSTED = "exhausted"  # failed on its last attempt; shown again at once for the dead-letter queue
    DEFERRED = "deferred"  # not attempted: the endpoint's breaker is open; hidden until it may be tried


@dataclass(frozen=True)
class Handled:
    result: Result
    outcome: DeliveryOutcome | None = None
    hidden_for: int | None = None  # seconds, when the message stays on the queue
    paused_until: float | None = None  # epoch seconds, when this failure paused the endpoint
    closed: bool = False  # this success closed a breaker that had failures on record

    @property
    def done(self) -> bool:
        """The message may be deleted from the queue."""
        return self.result in (Result.DELIVERED, Result.GONE, Result.REFUSED)


class Deliverer:
    def __init__(
        self, rt: Runtime, queue: DeliveryQueue, breaker: CircuitBreaker, clock: Callable[[], float] = time.time
    ) -> None:
        self.rt = rt
        self.queue = queue
        self.breaker = breaker
        self.clock = clock  # epoch seconds

    @classmethod
    def for_runtime(cls, rt: Runtime) -> Deliverer:
        rt.require("table_name")
        repository = EndpointHealthRepository(rt.settings.table_name, rt.client("dynamodb"))
        breaker = CircuitBreaker(repository, rt.settings.webhook_deadline_seconds)
        return cls(rt, rt.delivery_queue, breaker)

    def handle(self, event: QueuedEvent) -> Handled:
        if not event.tenant_id:
            return Handled(Result.REFUSED, DeliveryOutcome(Delivery.REFUSED, reason="no tenant_id attribute"))
        _, url = webhook_url(event.body)
        if url is None:
            return Handled(Result.REFUSED, DeliveryOutcome(Delivery.REFUSED, reason="the job has no webhook_url"))
        try:
            self.rt.url_guard.check(url, field="webhook_url", resolve=False)
        except UnsafeUrlError as exc:
            return Handled(Result.REFUSED, DeliveryOutcome(Delivery.REFUSED, reason=exc.message))

        endpoint = Endpoint(event.tenant_id, url)
        decision = self.breaker.admit(endpoint, self.clock())
        if decision.admission is Admission.WAIT:
            return self._later(event, Result.DEFERRED, None, not_before=decision.wait_until)

        outcome = deliver_event(self.rt, event.body, event.tenant_id)
        if outcome.result in (Delivery.DELIVERED, Delivery.GONE):
            closed = self.breaker.succeeded(endpoint, decision)
            return Handled(Result(outcome.result.value), outcome, closed=closed)
        if outcome.result is Delivery.REFUSED:
            return Handled(Result.REFUSED, outcome)
        return self._failed(event, endpoint, outcome)

    def _failed(self, event: QueuedEvent, endpoint: Endpoint, outcome: DeliveryOutcome) -> Handled:
        opened = self.breaker.failed(endpoint, self.clock(), outcome.reason or "failed")
        paused_until = opened.until if opened else None
        result = self._later(event, Result.RETRY, outcome, retry_after=outcome.retry_after, not_before=paused_until)
        return Handled(result.result, outcome, result.hidden_for, paused_until=paused_until)

    def _later(
        self,
        event: QueuedEvent,
        result: Result,
        outcome: DeliveryOutcome | None,
        *,
        retry_after: float | None = None,
        not_before: float | None = None,
    ) -> Handled:
        seconds = hidden_for(
            event.attempt, now=self.clock(), sent_at=event.sent_at, retry_after=retry_after, not_before=not_before
        )
        self.queue.hide(event.queue_arn, event.receipt_handle, seconds)
        exhausted = delay_before_retry(event.attempt) is None
        return Handled(Result.EXHAUSTED if exhausted else result, outcome, seconds)
