"""A DynamoDB stream mapping, run as Lambda runs it.

One consumer thread per mapping reads every shard (`GetRecords` about every 100 ms; a child shard only
once its parent is finished), keeps the records its filters select, and feeds them to lanes. A lane is
what Lambda calls a batch position: records in stream order, one batch in flight at a time. With a
ParallelizationFactor above 1 a shard has that many lanes and a record goes to the lane of its partition
key, so records of one item stay in order while another item's failing record does not hold them up.

A batch is sent when it is full, when its oldest record has waited MaximumBatchingWindowInSeconds, or at
once without a window. After a failure:
- a partial answer (ReportBatchItemFailures) completes the records before the lowest failed sequence
  number and retries from it;
- an error retries the whole batch, or with BisectBatchOnFunctionError splits it in two (a split does not
  count as a retry);
- after MaximumRetryAttempts retries, or once a record is older than MaximumRecordAgeInSeconds, the records
  are given up on: an invocation record goes to the on-failure destination and the lane moves on.

The lanes' batches are sent side by side when the function can run that many at once (in sandboxes of its
own); what comes of each is recorded on the consumer thread.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from local.aws.eventsources.config import INFINITE, MappingProperties
from local.aws.eventsources.destinations import Condition, FailedBatch, OnFailureDestination
from local.aws.eventsources.driver import DEFAULT_TIMING, Clients, MappingDriver, Timing
from local.aws.eventsources.invoke import Invocable, Outcome, Verdict, invoke_batch
from local.aws.eventsources.records import stream_event_record

GET_RECORDS_LIMIT = 1000
DISCOVERY_INTERVAL_SECONDS = 1.0
MAX_RETRY_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class StreamRecord:
    event: dict[str, Any]  # as the function receives it
    sequence: str
    arrival: datetime  # ApproximateCreationDateTime, full precision
    read_at: float  # monotonic time it was read from the shard
    shard_id: str

    @property
    def sequence_number(self) -> int:
        return int(self.sequence)


@dataclass
class Attempt:
    """Records to invoke with, in order; `retries` counts failures against MaximumRetryAttempts."""

    records: list[StreamRecord]
    retries: int = 0
    invocations: int = 0
    not_before: float = 0.0
    last_error: str | None = None
    exhausted: bool = False  # out of retries; set before the destination is told, in case telling it fails


@dataclass
class Lane:
    pending: deque[StreamRecord] = field(default_factory=deque)
    work: deque[Attempt] = field(default_factory=deque)

    @property
    def idle(self) -> bool:
        return not self.pending and not self.work


@dataclass
class Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    last_sequence: str | None = None
    closed: bool = False
    next_poll: float = 0.0
    empty_poll_started: float | None = None  # start of the latest poll, if it found nothing


class StreamMapping(MappingDriver):
    def __init__(
        self,
        name: str,
        properties: MappingProperties,
        host: Invocable,
        clients: Clients,
        timing: Timing = DEFAULT_TIMING,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name, properties, host, clients, timing)
        self.stream_arn = properties.event_source_arn
        self.batch_size = properties.effective_batch_size
        self.window = float(properties.maximum_batching_window_in_seconds)
        self.lanes_per_shard = properties.parallelization_factor or 1
        self.bisect = bool(properties.bisect_batch_on_function_error)
        destination = properties.on_failure_destination
        self.destination = OnFailureDestination(destination, clients) if destination else None
        self.clock = clock
        self.shards: dict[str, Shard] = {}
        self.lanes: dict[tuple[str, int], Lane] = {}
        self._finished: set[str] = set()
        self._hash_key: str | None = None
        self._next_discovery = 0.0
        self._discovered_once = False
        self._streams: Any = None
        self._pool: ThreadPoolExecutor | None = None
        # moto serves DynamoDB Streams on the plain regional endpoint only (botocore would otherwise address
        # an account-specific host); the streams client, made on the consumer thread, honours this.
        os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"

    # -- shards ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        self._streams = self.clients("dynamodbstreams")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _describe(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
            if start:
                kwargs["ExclusiveStartShardId"] = start
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            for item in description.get("KeySchema", []):
                if item["KeyType"] == "HASH":
                    self._hash_key = item["AttributeName"]
            shards.extend(description.get("Shards", []))
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def _discover(self) -> None:
        initial = not self._discovered_once
        for found in self._describe():
            shard_id = found["ShardId"]
            if shard_id not in self.shards:
                # Shards present at start begin at StartingPosition; later ones (splits) from their start.
                position = self.properties.starting_position if initial else "TRIM_HORIZON"
                shard = Shard(shard_id, found.get("ParentShardId"))
                shard.iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
                )["ShardIterator"]
                self.shards[shard_id] = shard
        self._discovered_once = True
        self._next_discovery = self.now() + DISCOVERY_INTERVAL_SECONDS

    def _readable(self, shard: Shard) -> bool:
        """Lambda finishes a parent shard before it reads the children."""
        if shard.closed:
            return False
        parent = shard.parent_id
        return parent is None or parent not in self.shards or parent in self._finished

    def _poll(self, shard: Shard) -> bool:
        started = self.now()
        shard.next_poll = started + self.poll_interval
        try:
            answer = self._streams.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            shard.iterator = self._reopen(shard)
            return False
        raw_records = answer.get("Records", [])
        shard.iterator = answer.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
        shard.empty_poll_started = None if raw_records else started
        for raw in raw_records:
            self._accept(shard, raw, started)
        return bool(raw_records)

    def _reopen(self, shard: Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last_sequence is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_sequence)
        else:
            kwargs["ShardIteratorType"] = self.properties.starting_position
        return str(self._streams.get_shard_iterator(**kwargs)["ShardIterator"])

    def _accept(self, shard: Shard, raw: dict[str, Any], read_at: float) -> None:
        self.moved()
        self.stats.received += 1
        shard.last_sequence = raw["dynamodb"]["SequenceNumber"]
        event = stream_event_record(raw, self.stream_arn)
        if not self.filters.keeps(event):
            self.stats.filtered += 1  # dropped, as Lambda drops records no filter selects
            return
        arrival = raw["dynamodb"].get("ApproximateCreationDateTime")
        record = StreamRecord(
            event=event,
            sequence=shard.last_sequence,
            arrival=arrival if isinstance(arrival, datetime) else datetime.fromtimestamp(float(arrival or 0), UTC),
            read_at=read_at,
            shard_id=shard.shard_id,
        )
        self._lane(shard.shard_id, event).pending.append(record)

    def lane_of(self, keys: dict[str, Any]) -> int:
        """The lane (of ParallelizationFactor per shard) for an item's keys: the same partition key, the same lane."""
        if self.lanes_per_shard == 1:
            return 0
        partition = keys.get(self._hash_key) if self._hash_key else keys
        return zlib.crc32(json.dumps(partition, sort_keys=True).encode()) % self.lanes_per_shard

    def _lane(self, shard_id: str, event: dict[str, Any]) -> Lane:
        return self.lanes.setdefault((shard_id, self.lane_of(event["dynamodb"]["Keys"])), Lane())

    def _finish_closed_shards(self) -> None:
        for shard in self.shards.values():
            if shard.closed and shard.shard_id not in self._finished:
                lanes = [lane for (shard_id, _), lane in self.lanes.items() if shard_id == shard.shard_id]
                if all(lane.idle for lane in lanes):
                    self._finished.add(shard.shard_id)

    # -- the consumer round ------------------------------------------------------------------------

    def step(self) -> bool:
        now = self.now()
        if now >= self._next_discovery:
            self._discover()
        progressed = False
        for shard in list(self.shards.values()):
            if self._readable(shard) and now >= shard.next_poll:
                progressed |= self._poll(shard)
        progressed |= self._advance_lanes()
        self._finish_closed_shards()
        self._quiet_as_of = self._quiet_point()
        return progressed

    def _quiet_point(self) -> float | None:
        if not self._discovered_once or not all(lane.idle for lane in self.lanes.values()):
            return None
        open_shards = [shard for shard in self.shards.values() if not shard.closed]
        starts = [shard.empty_poll_started for shard in open_shards]
        if any(start is None for start in starts):
            return None
        return min((start for start in starts if start is not None), default=self.now())

    def idle_wait(self) -> float:
        waits = [self.poll_interval / 2]
        now = self.now()
        for lane in self.lanes.values():
            if lane.work:
                waits.append(lane.work[0].not_before - now)
            elif lane.pending:
                waits.append(lane.pending[0].read_at + self.window - now)
        return max(0.005, min(waits))

    # -- one lane ----------------------------------------------------------------------------------

    def _next_batch(self, lane: Lane, now: float) -> None:
        if lane.work or not lane.pending:
            return
        full = len(lane.pending) >= self.batch_size
        waited = now - lane.pending[0].read_at >= self.window
        if full or waited:
            count = min(self.batch_size, len(lane.pending))
            lane.work.append(Attempt([lane.pending.popleft() for _ in range(count)]))

    def _advance_lanes(self) -> bool:
        """At most one invocation (or one give-up) per lane. The lanes' invocations run side by side when the
        function may run that many at once (its sandboxes), as Lambda runs a shard's batches in parallel; what
        comes of each is recorded here, on the consumer thread, in lane order."""
        progressed = False
        ready: list[tuple[Lane, Attempt, float]] = []
        for lane in list(self.lanes.values()):
            if self._stop.is_set():
                break
            now = self.now()
            attempt, gave_up = self._due(lane, now)
            progressed |= gave_up
            if attempt is not None:
                ready.append((lane, attempt, now))
        side_by_side = min(len(ready), getattr(self.host, "concurrency", 1))
        if side_by_side > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.lanes_per_shard, thread_name_prefix=f"esm-{self.name}")
            outcomes = list(self._pool.map(lambda item: self._invoke(item[1]), ready))
        else:
            outcomes = [self._invoke(attempt) for _, attempt, _ in ready]
        for (lane, attempt, now), outcome in zip(ready, outcomes, strict=True):
            self._record(lane, attempt, outcome, now)
            progressed = True
        return progressed

    def _due(self, lane: Lane, now: float) -> tuple[Attempt | None, bool]:
        """The lane's batch to send now, if any; or True when its head was given up on instead."""
        self._next_batch(lane, now)
        if not lane.work or lane.work[0].not_before > now:
            return None, False
        attempt = lane.work[0]
        if attempt.exhausted:
            self._give_up(attempt, attempt.records, Condition.RETRIES_EXHAUSTED)
            lane.work.popleft()
            return None, True
        expired = self._expired(attempt.records)
        if expired:
            self._give_up(attempt, attempt.records[:expired], Condition.RECORD_TOO_OLD)
            del attempt.records[:expired]
            if not attempt.records:
                lane.work.popleft()
            return None, True
        return attempt, False

    def _invoke(self, attempt: Attempt) -> Outcome:
        return invoke_batch(
            self.host,
            [record.event for record in attempt.records],
            {record.sequence for record in attempt.records},
            self.properties.reports_item_failures,
        )

    def _record(self, lane: Lane, attempt: Attempt, outcome: Outcome, now: float) -> None:
        records = attempt.records
        self.moved()
        self.stats.batches += 1
        attempt.invocations += 1
        if outcome.verdict is Verdict.SUCCEEDED:
            self.stats.records += len(records)
            lane.work.popleft()
            return

        self.stats.failures += 1
        attempt.last_error = outcome.function_error
        if outcome.verdict is Verdict.PARTIAL:
            first_failed = next(i for i, record in enumerate(records) if record.sequence in outcome.failed_items)
            self.stats.records += first_failed
            del records[:first_failed]
        elif self.bisect and len(records) > 1:
            lane.work.popleft()
            half = len(records) // 2
            for part in (records[half:], records[:half]):
                lane.work.appendleft(Attempt(part, attempt.retries, attempt.invocations, 0.0, outcome.function_error))
            return
        self._retry_or_give_up(lane, attempt, now)

    def _retry_or_give_up(self, lane: Lane, attempt: Attempt, now: float) -> None:
        attempt.retries += 1
        limit = self.properties.retry_attempts
        if limit != INFINITE and attempt.retries > limit:
            attempt.exhausted = True
            self._give_up(attempt, attempt.records, Condition.RETRIES_EXHAUSTED)
            lane.work.popleft()
            return
        backoff = self.retry_backoff * 2 ** (attempt.retries - 1)
        attempt.not_before = now + min(backoff, MAX_RETRY_BACKOFF_SECONDS)

    def _expired(self, records: list[StreamRecord]) -> int:
        """How many records at the head of the batch are older than MaximumRecordAgeInSeconds."""
        limit = self.properties.record_age_limit
        if limit == INFINITE:
            return 0
        now = self.clock()
        count = 0
        for record in records:
            if (now - record.arrival).total_seconds() <= limit:
                break
            count += 1
        return count

    def _give_up(self, attempt: Attempt, records: list[StreamRecord], condition: Condition) -> None:
        if self.destination is None:
            self.stats.discarded += len(records)
            return
        failed = FailedBatch(
            stream_arn=self.stream_arn,
            shard_id=records[0].shard_id,
            first_sequence=records[0].sequence,
            last_sequence=records[-1].sequence,
            first_arrival=records[0].arrival,
            last_arrival=records[-1].arrival,
            size=len(records),
            condition=condition,
            invocations=attempt.invocations,
            function_error=attempt.last_error,
        )
        self.destination.send_failed(failed, self.function_arn, self.clock())
        self.moved()
        self.stats.dead_lettered += len(records)
