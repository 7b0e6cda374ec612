"""A load run through the local stack: jobs submitted over HTTP in waves, every SNS event collected with
the time it was published, and the billable work counted (see `bench.meter`).

Completion is learnt from the events (an SQS queue of our own subscribed to the topic, as an app would),
never by asking the API, so the run adds no API, Lambda or DynamoDB work of its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from kling_relay import TERMINAL_STATUSES as TERMINAL
from kling_relay import KlingRelay

from bench.meter import Meter, Tally
from local.system import LocalOptions, LocalSystem

SUBMIT_THREADS = 4
WAVE_TIMEOUT_SECONDS = 600.0
FAKE_KEY = "bench"  # the AWS emulator takes any credentials


@dataclass(frozen=True)
class Planned:
    provider: str
    kind: str  # what the job stands for: "callback", "poll-only", "callback dropped"
    prompt: str


@dataclass
class Event:
    type: str
    sent_at: float  # SQS SentTimestamp: when SNS delivered the publish to our queue (ms resolution)
    created_at: float  # the event's created_at: when the status change it reports was stored
    completed_by: str | None = None
    task_id: str | None = None  # the provider's task, once the job's Dispatch step recorded one


@dataclass
class JobOutcome:
    planned: Planned
    job_id: str = ""
    submit_error: str | None = None
    task_id: str | None = None
    task_created: float | None = None
    finished_at: float | None = None  # the emulator task's end
    status_queries: int = 0
    callbacks_delivered: int = 0
    events: list[Event] = field(default_factory=list)
    transitions: int = 0
    poll_rounds: int = 0
    execution_status: str = ""
    job_created: float | None = None

    @property
    def final(self) -> Event | None:
        return next((e for e in self.events if e.type.removeprefix("job.") in TERMINAL), None)

    @property
    def status(self) -> str:
        final = self.final
        return final.type.removeprefix("job.") if final else ("not submitted" if self.submit_error else "unfinished")

    def first_event(self, *types: str) -> Event | None:
        return next((e for e in sorted(self.events, key=lambda e: e.sent_at) if e.type in types), None)


@dataclass
class Phase:
    name: str
    jobs: list[JobOutcome]
    tally: Tally
    seconds: float
    waves: int
    problems: list[str]


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class EventCollector:
    """Reads our queue on a thread; events by job id."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.by_job: dict[str, list[Event]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["SentTimestamp"]
            ).get("Messages", [])
            for message in batch:
                body = json.loads(message["Body"])
                event = Event(
                    type=body["type"],
                    sent_at=int(message["Attributes"]["SentTimestamp"]) / 1000,
                    created_at=_timestamp(body["created_at"]),
                    completed_by=body["data"].get("completed_by"),
                    task_id=body["data"].get("provider_task_id"),
                )
                with self._lock:
                    self.by_job.setdefault(body["data"]["id"], []).append(event)
            if batch:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
                )

    def events(self, job_id: str) -> list[Event]:
        with self._lock:
            return list(self.by_job.get(job_id, []))

    def finished(self, job_id: str) -> bool:
        return any(e.type.removeprefix("job.") in TERMINAL for e in self.events(job_id))


class LoadRig:
    """A local stack with the meter installed, an API key and our event subscription."""

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.meter = Meter()
        self.stack = LocalSystem(options)

    @contextmanager
    def running(self) -> Iterator[LoadRig]:
        with self.meter.installed(), self.stack:
            stack = self.stack
            session = boto3.session.Session(
                region_name="us-east-1", aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY
            )
            self.sqs = session.client("sqs", endpoint_url=stack.aws.endpoint_url)
            self.sfn = session.client("stepfunctions", endpoint_url=stack.aws.endpoint_url)
            self.dynamodb = session.client("dynamodb", endpoint_url=stack.aws.endpoint_url)
            sns = session.client("sns", endpoint_url=stack.aws.endpoint_url)
            queue_url = self.sqs.create_queue(QueueName="bench-events")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=stack.outputs["TopicArn"],
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"RawMessageDelivery": "true"},
            )
            self.collector = EventCollector(self.sqs, queue_url)
            self.collector.start()
            key = stack.create_api_key("bench")
            # No retries: a refused submit is a finding of the run.
            self.api = KlingRelay(stack.base_url, key.api_key, timeout=60, max_retries=0)
            try:
                yield self
            finally:
                self.collector.stop()

    @property
    def emulator(self) -> Any:
        assert self.stack.emulator is not None
        return self.stack.emulator

    def execution_arn(self, job_id: str) -> str:
        prefix, name = self.stack.outputs["StateMachineArn"].rsplit(":stateMachine:", 1)
        return f"{prefix}:execution:{name}:{job_id}"

    # -- one phase ---------------------------------------------------------------------------------

    def run_phase(self, name: str, plans: list[Planned], wave_size: int, say: Any = print) -> Phase:
        before = self.meter.snapshot()
        started = time.monotonic()
        outcomes = [JobOutcome(planned=p) for p in plans]
        problems: list[str] = []
        waves = [outcomes[i : i + wave_size] for i in range(0, len(outcomes), wave_size)]
        for number, wave in enumerate(waves, 1):
            with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
                list(pool.map(self._submit, wave))
            self._wait_finished([o for o in wave if o.job_id], problems)
            say(f"    {name}: wave {number}/{len(waves)} done ({time.monotonic() - started:.0f} s)")
        submitted = [o for o in outcomes if o.job_id]
        self._wait_executions(submitted, problems)
        assert self.stack.events is not None
        self.stack.events.wait_idle(30)
        time.sleep(1.5)  # the collector's last long poll
        tally = self.meter.snapshot().minus(before)
        for outcome in submitted:
            self._complete(outcome)
        problems += [f"{o.planned.provider} job not submitted: {o.submit_error}" for o in outcomes if o.submit_error]
        return Phase(name, outcomes, tally, time.monotonic() - started, len(waves), problems)

    def _submit(self, outcome: JobOutcome) -> None:
        request = {"provider": outcome.planned.provider, "prompt": outcome.planned.prompt}
        try:
            job = self.api.jobs.create(**request)
        except Exception as exc:  # noqa: BLE001 (a refused submit is a finding of the run, reported with the rest)
            outcome.submit_error = f"{type(exc).__name__}: {exc}"
            return
        outcome.job_id = job.id
        outcome.job_created = job.created_at.timestamp()

    def _wait_finished(self, wave: list[JobOutcome], problems: list[str]) -> None:
        deadline = time.monotonic() + WAVE_TIMEOUT_SECONDS
        pending = {o.job_id for o in wave}
        while pending and time.monotonic() < deadline:
            pending = {job_id for job_id in pending if not self.collector.finished(job_id)}
            time.sleep(0.2)
        problems += [f"job {job_id} did not finish within {WAVE_TIMEOUT_SECONDS:.0f} s" for job_id in sorted(pending)]

    def _wait_executions(self, outcomes: list[JobOutcome], problems: list[str]) -> None:
        """Every poller execution ended (its last poll is part of the job's cost)."""
        deadline = time.monotonic() + WAVE_TIMEOUT_SECONDS
        for outcome in outcomes:
            while True:
                status = self.sfn.describe_execution(executionArn=self.execution_arn(outcome.job_id))["status"]
                if status != "RUNNING" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            outcome.execution_status = status
            if status != "SUCCEEDED":
                problems.append(f"poller of {outcome.job_id} ended {status}")

    def _complete(self, outcome: JobOutcome) -> None:
        outcome.events = self.collector.events(outcome.job_id)
        # Admission answers before any provider is called: the task id comes with the job's later events.
        outcome.task_id = next((e.task_id for e in outcome.events if e.task_id), None)
        if outcome.task_id:
            task = self.emulator.task(outcome.task_id)
            if task is not None:
                outcome.task_created = task.created_at
                outcome.finished_at = task.finished_at
                outcome.status_queries = task.status_queries
                outcome.callbacks_delivered = sum(1 for a in task.callback_attempts if a.delivered)
        history = self._history(outcome.job_id)
        outcome.transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
        outcome.poll_rounds = sum(
            1
            for e in history
            if e["type"] == "TaskStateEntered" and e.get("stateEnteredEventDetails", {}).get("name") == "Poll"
        )

    def _history(self, job_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.sfn.get_execution_history(
                executionArn=self.execution_arn(job_id), maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events
