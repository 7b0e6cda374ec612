"""Job events for apps with a `webhook_url` (SQS, filtered from SNS): POST them, signed, with retries."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, metrics, tracer
from shared.runtime import get_runtime
from shared.webhooks.outbound import TIMEOUT_SECONDS, Delivery, deliver_event

processor = BatchProcessor(event_type=EventType.SQS)


class DeliveryFailed(Exception):
    """Leave the message on the queue: its visibility timeout already says when to try again."""


@lru_cache(maxsize=8)
def queue_url(queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    answer = get_runtime().client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    return str(answer["QueueUrl"])


def deliver_record(record: SQSRecord) -> None:
    rt = get_runtime()
    attribute = record.message_attributes["tenant_id"]
    tenant = attribute.string_value if attribute is not None else None
    if not tenant:
        logger.error("event without tenant_id attribute; dropped")
        return
    attempt = int(record.attributes.approximate_receive_count)
    with rt.outbound_http(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
        outcome = deliver_event(rt, record.body, tenant, attempt, http)
    logger.info("webhook delivery", result=outcome.result.value, attempt=attempt, status=outcome.status_code)
    if outcome.result in (Delivery.DELIVERED, Delivery.GONE, Delivery.REFUSED):
        if outcome.result is not Delivery.DELIVERED:
            metrics.add_metric(name="WebhookDeliveriesDropped", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="WebhookDeliveriesFailed", unit=MetricUnit.Count, value=1)
    # Exhausted: visible again at once, so the queue's redrive moves it to the dead-letter queue.
    delay = outcome.retry_in_seconds if outcome.result is Delivery.RETRY else 0
    rt.client("sqs").change_message_visibility(
        QueueUrl=queue_url(record.event_source_arn), ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
    )
    raise DeliveryFailed(outcome.reason or outcome.result.value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=deliver_record, processor=processor, context=context)
