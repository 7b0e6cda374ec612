"""Every stored status change (table stream) becomes one event on the SNS topic."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.models.common import JobStatus
from shared.observability import logger, metrics, tracer
from shared.pacing.release import release_ended_task
from shared.runtime import get_runtime
from shared.services.admission import settle_finished
from shared.services.notify import event_for_job, job_from_image, publish

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
OUTCOME_METRICS = {
    JobStatus.SUCCEEDED: "JobsSucceeded",
    JobStatus.FAILED: "JobsFailed",
    JobStatus.TIMED_OUT: "JobsTimedOut",
    JobStatus.CANCELED: "JobsCanceled",
}


def notify_record(record: DynamoDBRecord) -> None:
    change = record.raw_event.get("dynamodb", {})
    job = job_from_image(change.get("NewImage", {}))
    if job is None:
        return
    rt = get_runtime()
    settle_finished(rt, job)
    event = event_for_job(job, change.get("OldImage"))
    if event is None:
        return
    release_ended_task(rt, job)  # the provider's task is over: its place in flight is free again
    publish(rt, event, job)
    logger.info("event published", job_id=job.id, event_id=event.id, type=event.type)
    if job.status in OUTCOME_METRICS:
        metrics.add_metric(name=OUTCOME_METRICS[job.status], unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=notify_record, processor=processor, context=context)
