"""Jobs entering `archiving` (table stream, filtered): copy their videos into the bucket."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, tracer
from shared.runtime import get_runtime
from shared.services.archive import archive_job

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def archive_record(record: DynamoDBRecord) -> None:
    image = record.raw_event["dynamodb"]["NewImage"]
    job_id = image["id"]["S"]
    logger.append_keys(job_id=job_id)
    job = archive_job(get_runtime(), job_id)
    logger.info("archive finished", status=job.status.value if job else "missing")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=archive_record, processor=processor, context=context)
