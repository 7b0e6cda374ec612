"""The SQS driver on moto: Lambda's SQS event, deleting what succeeded, leaving retries and redrive to the queue."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local.aws.eventsources import EventSources, MappingConfigError, QueueMapping, StreamMapping, Timing
from local.aws.eventsources.config import parse_mapping
from local.aws.eventsources.queues import LOCAL_MAX_CONCURRENCY
from tests.fixtures.aws import TABLE

FUNCTION = "kling-relay-test-deliver"
FAST = Timing(poll_interval=0.02, retry_backoff=0.01)


class RecordingHost:
    def __init__(self, answer: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.events.append(copy.deepcopy(event))
        return self.answer(event) if self.answer else None

    def bodies(self) -> list[list[str]]:
        return [[record["body"] for record in event["Records"]] for event in self.events]


@dataclass
class Queue:
    url: str
    arn: str

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def make_queue(name: str, **attributes: str) -> Queue:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn)


@pytest.fixture
def queue(aws_mock: None) -> Queue:
    return make_queue("deliveries")


def send(queue: Queue, *bodies: str, **attributes: dict[str, Any]) -> None:
    for body in bodies:
        boto3.client("sqs").send_message(QueueUrl=queue.url, MessageBody=body, MessageAttributes=attributes)


def properties(queue: Queue, **overrides: Any) -> dict[str, Any]:
    return {
        "FunctionName": FUNCTION,
        "EventSourceArn": queue.arn,
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        **overrides,
    }


@contextmanager
def running(props: dict[str, Any], host: RecordingHost) -> Iterator[tuple[QueueMapping, EventSources]]:
    mapping = QueueMapping("TestQueueMapping", parse_mapping("TestQueueMapping", props), host, boto3.client, FAST)
    sources = EventSources([mapping]).start()
    try:
        yield mapping, sources
    finally:
        assert sources.stop(), "the consumer thread did not stop"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def failing(*bad: str) -> Callable[[dict[str, Any]], Any]:
    """Report the messages whose body is in `bad` as failed."""

    def answer(event: dict[str, Any]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in bad]}

    return answer


def test_messages_reach_the_function_in_lambdas_event_shape_and_are_deleted(queue: Queue) -> None:
    send(
        queue,
        '{"id": "evt_1"}',
        tenant_id={"DataType": "String", "StringValue": "tenant-a"},
        raw={"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        count={"DataType": "Number", "StringValue": "3"},
    )
    host = RecordingHost()
    with running(properties(queue), host) as (mapping, sources):
        assert sources.wait_idle(10)

    (event,) = host.events
    (record,) = event["Records"]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"}
    assert record["body"] == '{"id": "evt_1"}'
    assert record["md5OfBody"] == hashlib.md5(b'{"id": "evt_1"}').hexdigest()  # noqa: S324
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    attributes = record["attributes"]
    assert attributes["ApproximateReceiveCount"] == "1"
    for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
        assert attributes[name]
    assert record["messageAttributes"] == {
        "tenant_id": {"stringValue": "tenant-a", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "raw": {"binaryValue": "AQI=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        "count": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
    }
    assert queue.counts() == (0, 0)
    assert (mapping.stats.batches, mapping.stats.records, mapping.stats.failures) == (1, 1, 0)


def test_a_partial_answer_deletes_all_but_the_reported_messages(queue: Queue) -> None:
    send(queue, "a", "b", "c")
    host = RecordingHost(failing("b"))
    with running(properties(queue), host) as (mapping, sources):
        assert sources.wait_idle(10)
        assert queue.counts() == (0, 1)  # b waits out its visibility timeout; a and c are gone
    assert sorted(host.bodies()[0]) == ["a", "b", "c"]
    assert (mapping.stats.records, mapping.stats.failures) == (2, 1)


def test_a_function_error_deletes_nothing(queue: Queue) -> None:
    send(queue, "a", "b")

    def answer(event: dict[str, Any]) -> Any:
        raise RuntimeError("webhook down")

    host = RecordingHost(answer)
    with running(properties(queue), host) as (mapping, sources):
        assert sources.wait_idle(10)
        assert queue.counts() == (0, 2)
    assert len(host.events) == 1
    assert (mapping.stats.records, mapping.stats.failures) == (0, 1)


def test_a_malformed_partial_answer_deletes_nothing(queue: Queue) -> None:
    send(queue, "a", "b")
    host = RecordingHost(lambda _: {"batchItemFailures": [{"itemIdentifier": "not-a-message-in-this-batch"}]})
    with running(properties(queue), host) as (mapping, sources):
        assert sources.wait_idle(10)
        assert queue.counts() == (0, 2)
    assert mapping.stats.failures == 1


def test_without_report_batch_item_failures_a_returned_list_is_ignored(queue: Queue) -> None:
    send(queue, "a", "b")
    host = RecordingHost(failing("a"))
    with running(properties(queue, FunctionResponseTypes=[]), host) as (_, sources):
        assert sources.wait_idle(10)
        assert queue.counts() == (0, 0)


def test_a_failed_message_comes_back_after_its_visibility_timeout(aws_mock: None) -> None:
    queue = make_queue("quick-retry", VisibilityTimeout="1")
    send(queue, "flaky")
    answers = iter([failing("flaky"), lambda _: None])

    def answer(event: dict[str, Any]) -> Any:
        return next(answers)(event)  # fails the first time only

    host = RecordingHost(answer)
    with running(properties(queue), host):
        wait_until(lambda: len(host.events) == 2)
        wait_until(lambda: queue.counts() == (0, 0))
    receive_counts = [event["Records"][0]["attributes"]["ApproximateReceiveCount"] for event in host.events]
    assert receive_counts == ["1", "2"]


def test_the_function_may_set_a_messages_retry_delay(aws_mock: None) -> None:
    queue = make_queue("scheduled-retry", VisibilityTimeout="60")
    send(queue, "later")
    sqs = boto3.client("sqs")

    def answer(event: dict[str, Any]) -> Any:
        record = event["Records"][0]
        if record["attributes"]["ApproximateReceiveCount"] == "1":
            sqs.change_message_visibility(
                QueueUrl=queue.url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
            raise RuntimeError("retry at once")
        return None

    host = RecordingHost(answer)
    with running(properties(queue), host):
        wait_until(lambda: len(host.events) == 2)
        wait_until(lambda: queue.counts() == (0, 0))


def test_the_queues_redrive_policy_moves_a_message_to_its_dlq_after_max_receives(aws_mock: None) -> None:
    dlq = make_queue("deliveries-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 2})
    queue = make_queue("redriven", VisibilityTimeout="0", RedrivePolicy=redrive)
    send(queue, "poison")
    host = RecordingHost(failing("poison"))
    with running(properties(queue), host) as (mapping, _):
        wait_until(lambda: dlq.counts()[0] == 1)
        time.sleep(0.3)
        assert len(host.events) == 2  # received twice (maxReceiveCount), then the queue moved it
        assert mapping.stats.dead_lettered == 1
    assert queue.counts() == (0, 0)
    moved = boto3.client("sqs").receive_message(QueueUrl=dlq.url)["Messages"]
    assert [message["Body"] for message in moved] == ["poison"]


def test_messages_no_filter_selects_are_deleted_unseen(queue: Queue) -> None:
    send(queue, '{"type": "job.succeeded"}', '{"type": "job.queued"}', "plain text")
    pattern = {"body": {"type": [{"prefix": "job.succ"}]}}
    props = properties(queue, FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    host = RecordingHost()
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(10)
    assert [body for batch in host.bodies() for body in batch] == ['{"type": "job.succeeded"}']
    assert queue.counts() == (0, 0)
    assert mapping.stats.filtered == 2


def test_the_batching_window_gathers_more_than_one_receive(queue: Queue) -> None:
    send(queue, *[f"m{index}" for index in range(25)])
    host = RecordingHost()
    with running(properties(queue, BatchSize=20, MaximumBatchingWindowInSeconds=1), host) as (_, sources):
        assert sources.wait_idle(15)
    assert [len(batch) for batch in host.bodies()] == [20, 5]
    assert queue.counts() == (0, 0)


def test_without_a_window_a_batch_is_one_receive(queue: Queue) -> None:
    send(queue, *[f"m{index}" for index in range(12)])
    host = RecordingHost()
    with running(properties(queue), host) as (_, sources):
        assert sources.wait_idle(15)
    assert sorted(len(batch) for batch in host.bodies()) == [2, 10]


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"BatchSize": 11}, "needs MaximumBatchingWindowInSeconds"),
        ({"StartingPosition": "LATEST"}, "StartingPosition apply to streams"),
        ({"BisectBatchOnFunctionError": True, "MaximumRetryAttempts": 2}, "BisectBatchOnFunctionError, Maximum"),
    ],
)
def test_stream_settings_on_a_queue_are_refused(queue: Queue, overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(MappingConfigError, match=complaint):
        parse_mapping("QueueMapping", properties(queue, **overrides))


def test_a_fifo_source_is_refused(aws_mock: None) -> None:
    fifo = make_queue("ordered.fifo", FifoQueue="true")
    with pytest.raises(MappingConfigError, match="FIFO"):
        QueueMapping("QueueMapping", parse_mapping("QueueMapping", properties(fifo)), RecordingHost(), boto3.client)


def test_wait_idle_waits_for_what_one_mapping_hands_another(dynamodb: Any, queue: Queue) -> None:
    """A stream handler's message to a queue another mapping drains: idle means both are done."""
    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    sqs = boto3.client("sqs")

    def forward(event: dict[str, Any]) -> Any:
        time.sleep(0.3)  # long enough for the queue mapping to have polled empty meanwhile
        for record in event["Records"]:
            sqs.send_message(QueueUrl=queue.url, MessageBody=record["dynamodb"]["Keys"]["pk"]["S"])
        return None

    forwarder, consumer = RecordingHost(forward), RecordingHost()
    stream_props = {"FunctionName": "forwarder", "EventSourceArn": stream_arn, "StartingPosition": "TRIM_HORIZON"}
    mappings = [
        StreamMapping("Stream", parse_mapping("Stream", stream_props), forwarder, boto3.client, FAST),
        QueueMapping("Queue", parse_mapping("Queue", properties(queue)), consumer, boto3.client, FAST),
    ]
    with EventSources(mappings) as sources:
        assert sources.wait_idle(10)
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "ITEM#1"}, "sk": {"S": "ITEM"}})
        assert sources.wait_idle(10)
        assert consumer.bodies() == [["ITEM#1"]]
        assert sources.summary()["Queue"]["records"] == 1


class StillDriver(QueueMapping):
    """A mapping that is never started: its idleness is set by the test."""

    def set(self, quiet_as_of: float | None, last_activity: float) -> None:
        self._poller_quiet = {0: quiet_as_of}  # its one poller's last empty poll
        self.last_activity = last_activity


def test_wait_idle_needs_every_mapping_to_have_polled_since_the_last_activity_anywhere(queue: Queue) -> None:
    def still(name: str) -> StillDriver:
        return StillDriver(name, parse_mapping(name, properties(queue)), RecordingHost(), boto3.client, FAST)

    first, second = still("First"), still("Second")
    sources = EventSources([first, second])
    now = time.monotonic()
    # Both polled empty after wait_idle began, but `second` invoked after `first` last polled: what its handler
    # wrote may be for `first`, so this is not idle yet.
    first.set(quiet_as_of=now + 1, last_activity=0.0)
    second.set(quiet_as_of=now + 3, last_activity=now + 2)
    assert not sources.wait_idle(0.1)
    first.set(quiet_as_of=now + 4, last_activity=0.0)
    assert sources.wait_idle(0.1)
    first.set(quiet_as_of=None, last_activity=now + 5)  # records in hand
    assert not sources.wait_idle(0.1)


# -- MaximumConcurrency and the function's timeout ------------------------------------------------------------


class BlockingHost(RecordingHost):
    """Holds every batch whose first body is `hold` until released; counts how many run at once."""

    def __init__(self, timeout_seconds: float | None = None) -> None:
        super().__init__()
        self.release = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self.timeout_seconds = timeout_seconds

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if event["Records"][0]["body"] == "hold":
                self.release.wait(10)
            return super().invoke(event)
        finally:
            with self._lock:
                self.running -= 1


def test_with_maximum_concurrency_a_held_batch_does_not_hold_back_the_next(queue: Queue) -> None:
    host = BlockingHost()
    props = properties(queue, BatchSize=1, ScalingConfig={"MaximumConcurrency": 3})
    with running(props, host) as (mapping, sources):
        assert mapping.concurrency == 3
        assert (
            QueueMapping(
                "Many",
                parse_mapping("Many", properties(queue, ScalingConfig={"MaximumConcurrency": 500})),
                host,
                boto3.client,
            ).concurrency
            == LOCAL_MAX_CONCURRENCY
        )
        send(queue, "hold")
        wait_until(lambda: host.running == 1)
        send(queue, "next")
        wait_until(lambda: ["next"] in host.bodies())  # while the first batch is still held
        assert not sources.wait_idle(0.2)  # a batch in hand is not idle
        host.release.set()
        assert sources.wait_idle(10)
    assert sorted(host.bodies()) == [["hold"], ["next"]]
    assert host.most_at_once == 2
    assert queue.counts() == (0, 0)


def test_without_a_scaling_config_batches_run_one_at_a_time(queue: Queue) -> None:
    host = BlockingHost()
    with running(properties(queue, BatchSize=1), host) as (mapping, sources):
        assert mapping.concurrency == 1
        send(queue, "hold")
        wait_until(lambda: host.running == 1)
        send(queue, "next")
        time.sleep(0.3)
        assert host.bodies() == []  # the held batch's record is not in yet, and "next" waits for it
        host.release.set()
        assert sources.wait_idle(10)
    assert host.bodies() == [["hold"], ["next"]]
    assert host.most_at_once == 1


def test_a_batch_that_outlives_the_function_timeout_failed_whatever_it_answered(queue: Queue) -> None:
    """As Lambda stops a function at its timeout: none of the batch is deleted, all of it comes back."""
    host = BlockingHost(timeout_seconds=0.2)
    sqs = boto3.client("sqs")
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": "60"})
    with running(properties(queue), host) as (mapping, sources):
        send(queue, "hold")
        wait_until(lambda: host.running == 1)
        time.sleep(0.4)
        host.release.set()
        assert sources.wait_idle(10)
        assert mapping.stats.failures == 1
        assert mapping.stats.records == 0
    assert queue.counts() == (0, 1)  # still on the queue, hidden until its visibility timeout


def test_scaling_config_is_for_queues_only() -> None:
    stream = {
        "FunctionName": FUNCTION,
        "EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000",
        "StartingPosition": "LATEST",
        "ScalingConfig": {"MaximumConcurrency": 5},
    }
    with pytest.raises(MappingConfigError, match="ScalingConfig applies to an SQS source"):
        parse_mapping("Stream", stream)
