"""The DynamoDB stream driver on moto: filtering, batching, order, partial failures, bisection, destinations."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.aws.eventsources import (
    EventSources,
    MappingConfigError,
    MappingCrashedError,
    StreamMapping,
    Timing,
    build_mapping,
)
from local.aws.eventsources.config import parse_mapping
from tests.fixtures.aws import TABLE

FUNCTION = "kling-relay-test-consumer"
FAST = Timing(poll_interval=0.02, retry_backoff=0.01)


class RecordingHost:
    """A function host that records each event and answers through `answer` (raising = a function error)."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.events.append(copy.deepcopy(event))  # as received, whatever the answer does to it
        return self.answer(event) if self.answer else None

    def names(self) -> list[list[str]]:
        """The `name` attribute of each record's new image, per invocation."""
        return [[names_of(record) for record in event["Records"]] for event in self.events]


def names_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["NewImage"]["name"]["S"])


def failing_on(*bad: str) -> Callable[[dict[str, Any]], Any]:
    def answer(event: dict[str, Any]) -> Any:
        found = [names_of(r) for r in event["Records"] if names_of(r) in bad]
        if found:
            raise RuntimeError(f"cannot process {found}")
        return None

    return answer


class Clients:
    def __init__(self) -> None:
        self.made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self.made:
            self.made[service] = boto3.client(service)
        return self.made[service]


@pytest.fixture
def stream_arn(dynamodb: Any) -> str:
    return str(dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"])


@pytest.fixture
def failures(aws_mock: None) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="stream-failures")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def put(dynamodb: Any, name: str, key: str | None = None, **attributes: str) -> None:
    item = {"pk": {"S": f"ITEM#{key or name}"}, "sk": {"S": "ITEM"}, "name": {"S": name}}
    item.update({attribute: {"S": value} for attribute, value in attributes.items()})
    dynamodb.put_item(TableName=TABLE, Item=item)


def properties(stream_arn: str, **overrides: Any) -> dict[str, Any]:
    return {
        "FunctionName": FUNCTION,
        "EventSourceArn": stream_arn,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 10,
        **overrides,
    }


@contextmanager
def running(
    props: dict[str, Any], host: RecordingHost, clock: Callable[[], datetime] | None = None
) -> Iterator[tuple[StreamMapping, EventSources]]:
    mapping = StreamMapping(
        "TestMapping", parse_mapping("TestMapping", props), host, Clients(), FAST, clock or (lambda: datetime.now(UTC))
    )
    sources = EventSources([mapping]).start()
    try:
        yield mapping, sources
    finally:
        assert sources.stop(), "the consumer thread did not stop"
        assert not mapping.running


def received(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# -- records, filters, batches, order ------------------------------------------------------------------


def test_records_reach_the_function_in_lambdas_event_shape(dynamodb: Any, stream_arn: str) -> None:
    item = {"pk": {"S": "ITEM#a"}, "sk": {"S": "ITEM"}, "name": {"S": "a"}, "blob": {"B": b"\x00\xff"}}
    dynamodb.put_item(TableName=TABLE, Item=item)
    put(dynamodb, "a", colour="red")
    host = RecordingHost()
    before = int(time.time())
    with running(properties(stream_arn), host) as (_, sources):
        assert sources.wait_idle(5)

    assert len(host.events) == 1
    inserted, modified = host.events[0]["Records"]
    assert inserted["eventName"] == "INSERT"
    assert modified["eventName"] == "MODIFY"
    for record in (inserted, modified):
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stream_arn
        assert record["awsRegion"] == "us-east-1"
        assert record["eventVersion"]
        assert record["eventID"]
        change = record["dynamodb"]
        assert change["Keys"] == {"pk": {"S": "ITEM#a"}, "sk": {"S": "ITEM"}}
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(change["SizeBytes"], int)
        assert isinstance(change["ApproximateCreationDateTime"], int)
        assert before - 5 <= change["ApproximateCreationDateTime"] <= time.time() + 5
    assert inserted["dynamodb"]["NewImage"]["blob"] == {"B": "AP8="}  # base64, as in a JSON event
    assert "OldImage" not in inserted["dynamodb"]
    assert modified["dynamodb"]["OldImage"]["blob"] == {"B": "AP8="}
    assert modified["dynamodb"]["NewImage"]["colour"] == {"S": "red"}
    assert int(inserted["dynamodb"]["SequenceNumber"]) < int(modified["dynamodb"]["SequenceNumber"])


def test_only_records_a_filter_selects_are_delivered_in_order_and_in_batches(dynamodb: Any, stream_arn: str) -> None:
    for index in range(9):
        put(dynamodb, f"r{index}", kind="keep" if index not in (2, 5) else "skip")
    host = RecordingHost()
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
    props = properties(stream_arn, BatchSize=3, FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)

    assert host.names() == [["r0", "r1", "r3"], ["r4", "r6", "r7"], ["r8"]]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for e in host.events for r in e["Records"]]
    assert sequences == sorted(sequences)
    assert mapping.stats.summary() | {"poller_errors": 0} == {
        "received": 9,
        "filtered": 2,
        "batches": 3,
        "records": 7,
        "failures": 0,
        "dead_lettered": 0,
        "discarded": 0,
        "poller_errors": 0,
    }


def test_latest_skips_what_the_stream_held_before_the_mapping_started(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "old")
    host = RecordingHost()
    with running(properties(stream_arn, StartingPosition="LATEST"), host) as (_, sources):
        assert sources.wait_idle(5)
        put(dynamodb, "new")
        assert sources.wait_idle(5)
    assert host.names() == [["new"]]


def test_the_batching_window_gathers_records_written_apart(dynamodb: Any, stream_arn: str) -> None:
    host = RecordingHost()
    with running(properties(stream_arn, MaximumBatchingWindowInSeconds=1), host) as (_, sources):
        assert sources.wait_idle(5)
        for name in ("a", "b", "c"):
            put(dynamodb, name)
            time.sleep(0.15)
        assert sources.wait_idle(5)
    assert host.names() == [["a", "b", "c"]]


def test_a_full_batch_does_not_wait_for_the_window(dynamodb: Any, stream_arn: str) -> None:
    for name in ("a", "b", "c"):
        put(dynamodb, name)
    host = RecordingHost()
    started = time.monotonic()
    with running(properties(stream_arn, BatchSize=3, MaximumBatchingWindowInSeconds=300), host):
        wait_until(lambda: len(host.events) == 1, timeout=60)
    assert time.monotonic() - started < 300  # the window was not waited out
    assert host.names() == [["a", "b", "c"]]


# -- partial batch responses -----------------------------------------------------------------------------


def test_a_partial_failure_retries_from_the_lowest_failed_record(dynamodb: Any, stream_arn: str) -> None:
    for name in ("a", "b", "c", "d", "e"):
        put(dynamodb, name)
    calls = []

    def answer(event: dict[str, Any]) -> Any:
        calls.append(event)
        if len(calls) == 1:  # report d and b, in that order: the lowest sequence number (b) is the checkpoint
            by_name = {names_of(r): r["dynamodb"]["SequenceNumber"] for r in event["Records"]}
            return {"batchItemFailures": [{"itemIdentifier": by_name["d"]}, {"itemIdentifier": by_name["b"]}]}
        return {"batchItemFailures": []}

    host = RecordingHost(answer)
    props = properties(stream_arn, FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=2)
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)

    assert host.names() == [["a", "b", "c", "d", "e"], ["b", "c", "d", "e"]]
    assert (mapping.stats.records, mapping.stats.failures, mapping.stats.batches) == (5, 1, 2)


def test_without_report_batch_item_failures_the_answer_is_ignored(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "a")
    put(dynamodb, "b")

    def answer(event: dict[str, Any]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}

    host = RecordingHost(answer)
    with running(properties(stream_arn), host) as (mapping, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["a", "b"]]
    assert mapping.stats.failures == 0


@pytest.mark.parametrize(
    "bad_answer",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "1"}]},
        {"batchItemFailures": [{"itemIdentifier": "999999999999999999999999"}]},
        {"batchItemFailures": "all of them"},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_partial_answer_fails_the_whole_batch(dynamodb: Any, stream_arn: str, bad_answer: Any) -> None:
    put(dynamodb, "a")
    put(dynamodb, "b")
    answers = iter([bad_answer, None])
    host = RecordingHost(lambda _: next(answers))
    props = properties(stream_arn, FunctionResponseTypes=["ReportBatchItemFailures"])
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["a", "b"], ["a", "b"]]
    assert mapping.stats.failures == 1


# -- errors, retries, bisection, destinations --------------------------------------------------------------


def test_an_error_retries_the_whole_batch_then_the_destination_gets_its_coordinates(
    dynamodb: Any, stream_arn: str, failures: tuple[str, str]
) -> None:
    queue_url, queue_arn = failures
    for name in ("a", "bad", "c"):
        put(dynamodb, name)
    host = RecordingHost(failing_on("bad"))
    props = properties(stream_arn, MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)
        put(dynamodb, "after")  # the shard moved on past the failed batch
        assert sources.wait_idle(5)

    assert host.names() == [["a", "bad", "c"]] * 3 + [["after"]]
    sequences = [r["dynamodb"]["SequenceNumber"] for r in host.events[0]["Records"]]
    (message,) = received(queue_url)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["requestContext"]["functionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert message["version"] == "1.0"
    info = message["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == sequences[0]
    assert info["endSequenceNumber"] == sequences[-1]
    assert info["batchSize"] == 3
    assert info["streamArn"] == stream_arn
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert (mapping.stats.dead_lettered, mapping.stats.records, mapping.stats.failures) == (3, 1, 3)


def test_bisection_isolates_the_failing_record(dynamodb: Any, stream_arn: str, failures: tuple[str, str]) -> None:
    queue_url, queue_arn = failures
    for name in ("a", "bad", "c", "d"):
        put(dynamodb, name)
    host = RecordingHost(failing_on("bad"))
    props = properties(
        stream_arn,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)

    # Splits cost no retry; the lone bad record is then tried once more (MaximumRetryAttempts=1) and given up.
    assert host.names() == [["a", "bad", "c", "d"], ["a", "bad"], ["a"], ["bad"], ["bad"], ["c", "d"]]
    bad_sequence = host.events[3]["Records"][0]["dynamodb"]["SequenceNumber"]
    (message,) = received(queue_url)
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        bad_sequence,
        bad_sequence,
        1,
    )
    assert (mapping.stats.records, mapping.stats.dead_lettered) == (3, 1)


def test_bisection_with_a_partial_answer_retries_only_the_rest(dynamodb: Any, stream_arn: str) -> None:
    for name in ("a", "b", "c", "d"):
        put(dynamodb, name)
    answers: list[Any] = []

    def answer(event: dict[str, Any]) -> Any:
        answers.append(event)
        if len(answers) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["dynamodb"]["SequenceNumber"]}]}
        return None

    host = RecordingHost(answer)
    props = properties(stream_arn, BisectBatchOnFunctionError=True, FunctionResponseTypes=["ReportBatchItemFailures"])
    with running(props, host) as (_, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["a", "b", "c", "d"], ["c", "d"]]


def test_without_a_destination_exhausted_records_are_discarded(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "bad")
    put(dynamodb, "good")
    host = RecordingHost(failing_on("bad"))
    with running(properties(stream_arn, BatchSize=1, MaximumRetryAttempts=0), host) as (mapping, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["bad"], ["good"]]
    assert (mapping.stats.discarded, mapping.stats.dead_lettered, mapping.stats.records) == (1, 0, 1)


def test_records_older_than_the_maximum_age_go_to_the_destination(
    dynamodb: Any, stream_arn: str, failures: tuple[str, str]
) -> None:
    queue_url, queue_arn = failures
    put(dynamodb, "bad")
    skew = [timedelta(0)]

    def answer(event: dict[str, Any]) -> Any:
        skew[0] = timedelta(minutes=2)  # by the next attempt the record is two minutes old
        raise RuntimeError("still failing")

    host = RecordingHost(answer)
    props = properties(
        stream_arn,
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    with running(props, host, clock=lambda: datetime.now(UTC) + skew[0]) as (mapping, sources):
        assert sources.wait_idle(5)
    assert len(host.events) == 1  # retries are unlimited; the age limit ended them
    (message,) = received(queue_url)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 1
    assert mapping.stats.dead_lettered == 1


def test_an_answer_that_is_not_json_is_a_function_error(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "a")
    answers = iter([{"when": datetime.now(UTC)}, None])
    host = RecordingHost(lambda _: next(answers))
    with running(properties(stream_arn), host) as (mapping, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["a"], ["a"]]
    assert mapping.stats.failures == 1


def test_the_function_cannot_change_the_records_it_is_given(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "a")

    def answer(event: dict[str, Any]) -> Any:
        event["Records"][0]["dynamodb"]["NewImage"]["name"]["S"] = "changed"
        raise RuntimeError("fail, after scribbling on the event")

    host = RecordingHost(answer)
    with running(properties(stream_arn, MaximumRetryAttempts=1), host) as (_, sources):
        assert sources.wait_idle(5)
    assert host.names() == [["a"], ["a"]]  # the retry carries the record as read, not as the handler left it


# -- lanes (ParallelizationFactor) -----------------------------------------------------------------------


def test_a_stuck_item_holds_up_its_own_lane_only(dynamodb: Any, stream_arn: str) -> None:
    host = RecordingHost(failing_on("stuck"))
    props = properties(stream_arn, BatchSize=1, ParallelizationFactor=4)
    with running(props, host) as (mapping, sources):
        assert sources.wait_idle(5)

        def keys(name: str) -> dict[str, Any]:
            return {"pk": {"S": f"ITEM#{name}"}, "sk": {"S": "ITEM"}}

        stuck_lane = mapping.lane_of(keys("A"))
        other = next(f"B{n}" for n in range(100) if mapping.lane_of(keys(f"B{n}")) != stuck_lane)
        put(dynamodb, "stuck", key="A")
        put(dynamodb, "after-stuck", key="A")  # same item: must wait behind the stuck record
        put(dynamodb, "elsewhere", key=other)
        wait_until(lambda: ["elsewhere"] in host.names() and host.names().count(["stuck"]) >= 3)
        assert ["after-stuck"] not in host.names()


def test_records_of_one_item_stay_in_order_across_lanes(dynamodb: Any, stream_arn: str) -> None:
    for version in range(6):
        put(dynamodb, f"x{version}", key="X")
        put(dynamodb, f"y{version}", key="Y")
    host = RecordingHost()
    with running(properties(stream_arn, BatchSize=2, ParallelizationFactor=3), host) as (_, sources):
        assert sources.wait_idle(5)
    delivered = [name for batch in host.names() for name in batch]
    assert [n for n in delivered if n.startswith("x")] == [f"x{v}" for v in range(6)]
    assert [n for n in delivered if n.startswith("y")] == [f"y{v}" for v in range(6)]


class SlowHost(RecordingHost):
    """A host that takes a while per batch and notes how many of its invocations ran at once."""

    def __init__(self, concurrency: int) -> None:
        super().__init__()
        self.concurrency = concurrency
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.1)
            return super().invoke(event)
        finally:
            with self._count:
                self.running -= 1


@pytest.mark.parametrize(("concurrency", "most"), [(4, range(2, 5)), (1, range(1, 2))])
def test_lanes_send_their_batches_side_by_side_when_the_function_can_take_them(
    dynamodb: Any, stream_arn: str, concurrency: int, most: range
) -> None:
    host = SlowHost(concurrency)
    with running(properties(stream_arn, BatchSize=1, ParallelizationFactor=4), host) as (mapping, sources):

        def keys(name: str) -> dict[str, Any]:
            return {"pk": {"S": f"ITEM#{name}"}, "sk": {"S": "ITEM"}}

        # Three records for each of four items, each item in a lane of its own.
        names: dict[int, str] = {}
        for n in range(200):
            names.setdefault(mapping.lane_of(keys(f"k{n}")), f"k{n}")
        assert len(names) == 4
        for version in range(3):
            for key in names.values():
                put(dynamodb, f"{key}-{version}", key=key)
        assert sources.wait_idle(10)

    assert host.most in most  # never more than the lanes, nor than the function can take
    delivered = [name for batch in host.names() for name in batch]
    assert sorted(delivered) == sorted(f"{key}-{version}" for key in names.values() for version in range(3))
    for key in names.values():  # each item's records still in order
        assert [n for n in delivered if n.startswith(f"{key}-")] == [f"{key}-{version}" for version in range(3)]


# -- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"TumblingWindowInSeconds": 60}, "TumblingWindowInSeconds"),
        ({"StartingPosition": None}, "StartingPosition is required"),
        ({"StartingPosition": "AT_TIMESTAMP"}, "StartingPosition"),
        ({"FunctionResponseTypes": ["Everything"]}, "FunctionResponseTypes"),
        ({"ParallelizationFactor": 11}, "ParallelizationFactor"),
        ({"FilterCriteria": {"Filters": [{"Pattern": '{"a": [{"wildcard": "x*"}]}'}]}}, "unsupported operator"),
        ({"EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s"}, "only DynamoDB streams and SQS"),
    ],
)
def test_a_mapping_that_cannot_run_as_deployed_is_refused(overrides: dict[str, Any], complaint: str) -> None:
    props = properties("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000", **overrides)
    props = {key: value for key, value in props.items() if value is not None}
    with pytest.raises(MappingConfigError, match=complaint) as caught:
        parse_mapping("ArchiveMapping", props)
    assert "ArchiveMapping" in str(caught.value)


def test_an_unsupported_destination_is_refused(stream_arn: str) -> None:
    props = properties(
        stream_arn, DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::a-bucket-of-failures"}}
    )
    with pytest.raises(MappingConfigError, match="only SQS queues and SNS topics"):
        StreamMapping("TestMapping", parse_mapping("TestMapping", props), RecordingHost(), Clients())


def test_stop_is_prompt_even_while_a_failed_batch_waits_for_its_retry(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "bad")
    host = RecordingHost(failing_on("bad"))
    mapping = StreamMapping(
        "TestMapping", parse_mapping("TestMapping", properties(stream_arn)), host, Clients(), Timing(0.02, 300.0)
    )
    sources = EventSources([mapping]).start()
    wait_until(lambda: len(host.events) == 1)  # unlimited retries, the next one 300 s away
    started = time.monotonic()
    assert sources.stop()
    assert time.monotonic() - started < 300  # the retry's pause was not waited out
    assert not mapping.running
    assert len(host.events) == 1


def test_stop_reports_a_consumer_still_inside_its_handler(dynamodb: Any, stream_arn: str) -> None:
    put(dynamodb, "slow")
    release = threading.Event()
    host = RecordingHost(lambda _: release.wait(5))
    mapping = StreamMapping("TestMapping", parse_mapping("TestMapping", properties(stream_arn)), host, Clients(), FAST)
    sources = EventSources([mapping]).start()
    wait_until(lambda: len(host.events) == 1)
    assert not sources.stop(timeout=0.2)
    release.set()
    assert mapping.join(2)


def test_a_poller_that_cannot_read_its_stream_keeps_trying_and_is_never_idle(aws_mock: None) -> None:
    missing = "arn:aws:dynamodb:us-east-1:123456789012:table/missing/stream/2026-01-01T00:00:00.000"
    mapping = StreamMapping(
        "TestMapping", parse_mapping("TestMapping", properties(missing)), RecordingHost(), Clients(), FAST
    )
    sources = EventSources([mapping]).start()
    try:
        assert not sources.wait_idle(1.2)
        assert mapping.stats.poller_errors >= 2
        assert mapping.stats.last_error
    finally:
        assert sources.stop()


class BrokenStreams:
    def describe_stream(self, **_: Any) -> Any:
        raise TypeError("a bug, not an AWS error")


def test_a_crashed_consumer_is_reported_not_mistaken_for_idle(stream_arn: str) -> None:
    mapping = StreamMapping(
        "TestMapping", parse_mapping("TestMapping", properties(stream_arn)), RecordingHost(), lambda _: BrokenStreams()
    )
    sources = EventSources([mapping]).start()
    with pytest.raises(MappingCrashedError, match="TestMapping stopped: TypeError"):
        sources.wait_idle(5)
    assert sources.stop()


@dataclass
class Functions:
    by_name: dict[str, RecordingHost]

    def resolve(self, name_or_arn: str) -> RecordingHost:
        return self.by_name[name_or_arn.split(":function:", 1)[-1]]


def test_a_mapping_for_a_function_that_is_not_deployed_is_refused(stream_arn: str) -> None:
    with pytest.raises(MappingConfigError, match="no function 'kling-relay-test-consumer'"):
        build_mapping("Orphan", properties(stream_arn), Functions({}), Clients())


def test_reading_goes_on_after_a_failed_transaction_replaces_the_table(dynamodb: Any, stream_arn: str) -> None:
    """moto restores a copy of the table (and its stream) when a transaction fails; the driver must follow it."""
    host = RecordingHost()
    with running(properties(stream_arn, BatchSize=1), host) as (_, sources):
        put(dynamodb, "before")
        assert sources.wait_idle(5)
        with pytest.raises(ClientError, match="TransactionCanceled"):
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"pk": {"S": "ITEM#before"}, "sk": {"S": "ITEM"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                ]
            )
        put(dynamodb, "after")
        wait_until(lambda: len(host.names()) == 2)
    assert host.names() == [["before"], ["after"]]
