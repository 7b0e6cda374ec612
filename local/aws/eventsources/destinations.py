"""A stream mapping's on-failure destination: the invocation record Lambda sends for records it gives up on.

The record names the batch (shard, first and last sequence numbers, arrival times), not its data: the
stream still holds the data for its retention period.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from local.aws.eventsources.config import MappingConfigError

Clients = Callable[[str], Any]


class Condition(StrEnum):
    RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
    RECORD_TOO_OLD = "RecordAgeExceeded"


@dataclass(frozen=True)
class FailedBatch:
    """The records given up on, in stream order, and how the last invocation of them went."""

    stream_arn: str
    shard_id: str
    first_sequence: str
    last_sequence: str
    first_arrival: datetime
    last_arrival: datetime
    size: int
    condition: Condition
    invocations: int
    function_error: str | None


def _iso(moment: datetime, *, millis: bool) -> str:
    moment = moment.astimezone(UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def invocation_record(batch: FailedBatch, function_arn: str, now: datetime) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if batch.function_error:
        response["functionError"] = batch.function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": batch.condition.value,
            "approximateInvokeCount": batch.invocations,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": batch.shard_id,
            "startSequenceNumber": batch.first_sequence,
            "endSequenceNumber": batch.last_sequence,
            "approximateArrivalOfFirstRecord": _iso(batch.first_arrival, millis=False),
            "approximateArrivalOfLastRecord": _iso(batch.last_arrival, millis=False),
            "batchSize": batch.size,
            "streamArn": batch.stream_arn,
        },
    }


class OnFailureDestination:
    """An SQS queue or SNS topic, named by ARN, that receives one invocation record per failed batch."""

    def __init__(self, arn: str, clients: Clients) -> None:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] not in ("sqs", "sns"):
            raise MappingConfigError(f"on-failure destination {arn!r}: only SQS queues and SNS topics are supported")
        self.arn = arn
        self.service = parts[2]
        self._clients = clients
        self._queue_url: str | None = None

    def _url(self) -> str:
        if self._queue_url is None:
            _, _, _, _, account, name = self.arn.split(":", 5)
            answer = self._clients("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._queue_url = str(answer["QueueUrl"])
        return self._queue_url

    def send_failed(self, batch: FailedBatch, function_arn: str, now: datetime) -> None:
        self.send(invocation_record(batch, function_arn, now))

    def send(self, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        if self.service == "sqs":
            self._clients("sqs").send_message(QueueUrl=self._url(), MessageBody=body)
        else:
            self._clients("sns").publish(TopicArn=self.arn, Message=body)
