"""An SQS mapping, run as Lambda runs it.

The consumer long-polls the queue (up to 10 messages a call, more calls within MaximumBatchingWindowInSeconds
up to BatchSize), deletes messages no filter selects, invokes the function, and deletes every message that
succeeded: all of them on success, those not named in `batchItemFailures` on a partial answer
(ReportBatchItemFailures), none when the function failed. Retries are the queue's: a message left alone
becomes visible again after its visibility timeout (which the function may change), and the queue's
RedrivePolicy moves it to the dead-letter queue once it has been received more than maxReceiveCount times.
moto applies the RedrivePolicy on receive, as SQS does, so the driver never moves messages itself; it
counts as dead-lettered a failed message that has used its last receive.

Lambda polls a queue with several pollers and invokes the function concurrently, up to the mapping's
ScalingConfig.MaximumConcurrency; locally a mapping with that setting runs that many pollers (at most
LOCAL_MAX_CONCURRENCY), each invoking on its own, so one slow batch does not hold the next one back. Without
it, one poller (Lambda would scale further; local mode keeps the order simple where nothing needs more).
An invocation that outlives the function's timeout is a failed one, as when Lambda stops it: nothing of its
batch is deleted, whatever the handler answered once it finished.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.aws.eventsources.config import MappingConfigError, MappingProperties
from local.aws.eventsources.driver import DEFAULT_TIMING, Clients, MappingDriver, Timing
from local.aws.eventsources.invoke import Invocable, Outcome, Verdict, invoke_batch
from local.aws.eventsources.records import queue_event_record

RECEIVE_MAX = 10
LONG_POLL_SECONDS = 1
DELETE_BATCH_MAX = 10
LOCAL_MAX_CONCURRENCY = 10


def filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a filter pattern sees: the record, with a JSON body parsed (a plain-text body stays a string)."""
    try:
        body = json.loads(record["body"])
    except ValueError:
        return record
    return {**record, "body": body}


class QueueMapping(MappingDriver):
    def __init__(
        self,
        name: str,
        properties: MappingProperties,
        host: Invocable,
        clients: Clients,
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        super().__init__(name, properties, host, clients, timing)
        if properties.event_source_arn.endswith(".fifo"):
            # Lambda keeps message-group order and stops a group at its first failure; not emulated here.
            raise MappingConfigError(f"event source mapping {name}: FIFO queue sources are not supported locally")
        self.queue_arn = properties.event_source_arn
        self.batch_size = properties.effective_batch_size
        self.window = float(properties.maximum_batching_window_in_seconds)
        self.queue_url = ""
        self.max_receive_count: int | None = None
        self.concurrency = min(properties.maximum_concurrency or 1, LOCAL_MAX_CONCURRENCY)
        self.timeout_seconds: float | None = getattr(host, "timeout_seconds", None)
        self._sqs: Any = None
        self._pollers: list[threading.Thread] = []
        self._shared = threading.Lock()  # the pollers' shared counters
        self._prepared = False
        # Per poller (by thread): the start of its last poll that found nothing, None while it has messages in
        # hand. The mapping is quiet since the earliest of them once every poller has one.
        self._poller_quiet: dict[int, float | None] = {}

    # -- several pollers ---------------------------------------------------------------------------

    def start(self) -> None:
        if not self.properties.enabled or self._pollers:
            return
        self._pollers = [
            threading.Thread(target=self._run, name=f"esm-{self.name}-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        self._thread = self._pollers[0]
        for poller in self._pollers:
            poller.start()

    def join(self, timeout: float) -> bool:
        deadline = self.now() + timeout
        for poller in self._pollers:
            poller.join(max(0.0, deadline - self.now()))
        return not any(poller.is_alive() for poller in self._pollers)

    @property
    def running(self) -> bool:
        return any(poller.is_alive() for poller in self._pollers)

    def quiet_since(self, mark: float) -> bool:
        with self._shared:
            quiet = [when for when in self._poller_quiet.values() if when is not None]
            every_poller = len(quiet) == len(self._poller_quiet) == max(1, len(self._pollers))
        self._quiet_as_of = min(quiet) if every_poller else None
        return super().quiet_since(mark)

    def _note_poll(self, quiet_as_of: float | None) -> None:
        with self._shared:
            self._poller_quiet[threading.get_ident()] = quiet_as_of

    def prepare(self) -> None:
        with self._shared:
            if self._prepared:
                return
            self._prepare()
            self._prepared = True

    def _prepare(self) -> None:
        self._sqs = self.clients("sqs")
        _, _, _, _, account, name = self.queue_arn.split(":", 5)
        self.queue_url = str(self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        if policy:
            self.max_receive_count = int(json.loads(policy)["maxReceiveCount"])

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, RECEIVE_MAX),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        messages = self._receive(self.batch_size, LONG_POLL_SECONDS)
        if not messages or self.window <= 0:
            return messages
        deadline = self.now() + self.window
        while len(messages) < self.batch_size and not self._stop.is_set():
            remaining = deadline - self.now()
            if remaining <= 0:
                break
            more = self._receive(self.batch_size - len(messages), 1 if remaining >= 1 else 0)
            messages.extend(more)
            if not more and remaining < 1:
                self._stop.wait(min(remaining, self.poll_interval))
        return messages

    def step(self) -> bool:
        started = self.now()
        try:
            messages = self._gather()
        except (ClientError, BotoCoreError):
            self._note_poll(None)  # the driver counts the error and polls again
            raise
        if not messages:
            self._note_poll(started)
            return False
        self._note_poll(None)
        self.moved()
        records = [queue_event_record(message, self.queue_arn) for message in messages]
        selected = [record for record in records if self.filters.keeps(filter_view(record))]
        chosen = {record["messageId"] for record in selected}
        done = [record for record in records if record["messageId"] not in chosen]
        with self._shared:
            self.stats.received += len(messages)
            self.stats.filtered += len(done)  # Lambda deletes messages no filter selects
        if selected:
            done.extend(self._invoke(selected))
        self._delete(done)
        self.moved()
        return True

    def _invoke(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Invoke with the batch; the records that succeeded, to be deleted."""
        began = self.now()
        outcome = invoke_batch(
            self.host, records, {record["messageId"] for record in records}, self.properties.reports_item_failures
        )
        if self.timeout_seconds is not None and self.now() - began > self.timeout_seconds:
            outcome = Outcome(Verdict.FAILED, function_error="Unhandled", reason="Task timed out")
        with self._shared:
            self.stats.batches += 1
            if outcome.verdict is Verdict.SUCCEEDED:
                succeeded = records
            else:
                self.stats.failures += 1
                if outcome.verdict is Verdict.PARTIAL:
                    succeeded = [r for r in records if r["messageId"] not in outcome.failed_items]
                    failed = [r for r in records if r["messageId"] in outcome.failed_items]
                else:
                    succeeded, failed = [], records
                self.stats.dead_lettered += sum(1 for record in failed if self._last_receive(record))
            self.stats.records += len(succeeded)
        return succeeded

    def _last_receive(self, record: dict[str, Any]) -> bool:
        """A failed message received maxReceiveCount times goes to the DLQ on the queue's next receive."""
        if self.max_receive_count is None:
            return False
        return int(record["attributes"].get("ApproximateReceiveCount", "0")) >= self.max_receive_count

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), DELETE_BATCH_MAX):
            chunk = records[start : start + DELETE_BATCH_MAX]
            answer = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
            for failed in answer.get("Failed", []):
                with self._shared:
                    self.stats.poller_errors += 1
                    self.stats.last_error = f"DeleteMessageBatch {failed.get('Code')}: {failed.get('Message')}"
