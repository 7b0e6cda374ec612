"""Job events for apps with a `webhook_url` (SQS, filtered from SNS): POST them, signed, with retries.

Every message of a batch is delivered at the same time (each attempt ends by its deadline), and each one is
reported on its own (partial batch response): a slow or failing endpoint delays no other message of its batch
and never sends one back to the queue. The retry schedule, the endpoints' circuit breakers and the queue
bookkeeping live in `shared.webhooks`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, metrics, tracer
from shared.runtime import get_runtime
from shared.webhooks.delivery import Deliverer, Handled, QueuedEvent, Result
from shared.webhooks.retry import ANSWER_SECONDS, BOOKKEEPING_SECONDS

# A batch is at most 10 messages (the event-source mapping's batch size); local mode may run a few batches at
# once in one process, so the pool has room for several.
POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="deliver")

METRICS = {
    Result.RETRY: "WebhookDeliveriesFailed",
    Result.EXHAUSTED: "WebhookDeliveriesFailed",
    Result.GONE: "WebhookDeliveriesDropped",
    Result.REFUSED: "WebhookDeliveriesDropped",
    Result.DEFERRED: "WebhookDeliveriesDeferred",
}


class DeliveryPending(Exception):
    """Leave the message on the queue: its visibility timeout already says when to try again."""


def queued_event(record: SQSRecord) -> QueuedEvent:
    attribute = record.message_attributes["tenant_id"]
    sent = record.attributes.sent_timestamp
    return QueuedEvent(
        body=record.body,
        tenant_id=attribute.string_value if attribute is not None else None,
        attempt=int(record.attributes.approximate_receive_count),
        sent_at=int(sent) / 1000 if sent else None,
        queue_arn=record.event_source_arn,
        receipt_handle=record.receipt_handle,
    )


def report(event: QueuedEvent, handled: Handled) -> None:
    if handled.result in METRICS:
        metrics.add_metric(name=METRICS[handled.result], unit=MetricUnit.Count, value=1)
    outcome = handled.outcome
    if outcome is not None and outcome.cut_off:
        metrics.add_metric(name="WebhookDeliveriesCutOff", unit=MetricUnit.Count, value=1)
    if handled.paused_until is not None:
        metrics.add_metric(name="WebhookEndpointsPaused", unit=MetricUnit.Count, value=1)
    logger.info(
        "webhook delivery",
        result=handled.result.value,
        attempt=event.attempt,
        tenant_id=event.tenant_id,
        status=outcome.status_code if outcome else None,
        reason=outcome.reason if outcome else None,
        retry_in=handled.hidden_for,
        paused_until=handled.paused_until,
        breaker_closed=handled.closed or None,
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    rt = get_runtime()
    rt.url_guard, rt.keys, rt.secrets  # noqa: B018  (made here, once, rather than by the delivery threads at once)
    deliverer = Deliverer.for_runtime(rt)
    remaining = context.get_remaining_time_in_millis() / 1000
    budget = max(1.0, min(rt.settings.webhook_deadline_seconds + BOOKKEEPING_SECONDS, remaining - ANSWER_SECONDS))

    async def deliver(record: SQSRecord) -> None:
        queued = queued_event(record)
        work = asyncio.get_running_loop().run_in_executor(POOL, deliverer.handle, queued)
        try:
            handled = await asyncio.wait_for(work, timeout=budget)
        except TimeoutError:
            # Bookkeeping stalled (the attempt itself ends by its deadline): the queue's visibility timeout
            # brings the message back.
            logger.warning("webhook delivery did not finish in time", attempt=queued.attempt, budget=budget)
            raise DeliveryPending("did not finish in time") from None
        report(queued, handled)
        if not handled.done:
            raise DeliveryPending(handled.result.value)

    # A batch whose every message is left for later is still an answer, not a function error: Lambda's error
    # metrics and the poller's error handling are for functions that broke.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return async_process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
