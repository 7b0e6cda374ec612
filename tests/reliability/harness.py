"""Driving the local stack for reliability scenarios: one `Rig` per test module.

A rig is the in-process local stack (moto, the real handlers, the provider emulator, the API on
127.0.0.1) plus what a scenario needs to provoke and observe it: an API key and client, an SNS -> SQS
event log, raw job items, callback tokens and Kie signatures for hand-made callbacks, per-function
settings overrides, and a spy on every outbound TCP connect.

Interfaces here are shared by every reliability module (and the load test); keep them stable.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from local.aws.lambdas import FunctionHost
from local.provider_emulator import ProviderEmulator
from local.system import LocalOptions, LocalSystem, NewKey
from shared.models.job import JobRecord
from shared.providers.kie_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_kie_callback
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.repository.jobs import JobRepository
from shared.repository.keys import TenantLimits
from shared.runtime import Runtime
from tests.reliability.invariants import Expect, Findings, check_jobs
from tests.support.api_client import ApiError, RelayClient

# Short jobs; callbacks land before the first poll of a callback provider (as the 90 s wait does in
# production), and emulator callback retries (1, 2, 4 s) shrink tenfold so forged ones end quickly.
DEFAULT_OPTIONS = LocalOptions(job_seconds=2.0, callback_first_wait_seconds=5)
# Load scenarios poll many jobs from one key: the highest default tier (100 requests/s) keeps the usage plan out of
# their way; the stage throttle still applies.
RIG_TIER = "pro"
CALLBACK_BACKOFF_SCALE = 0.1
JOB_TIMEOUT_SECONDS = 60.0
IDLE_TIMEOUT_SECONDS = 20.0


@dataclass
class EventLog:
    """Every SNS event, read through an SQS subscription of our own, as an app would subscribe.

    `events` keeps every delivery, repeats included (deliveries are at least once; ids must not repeat
    for another change).
    """

    stack: LocalSystem
    queue_url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, queue_name: str = "reliability-events") -> None:
        self.queue_url = self.stack.subscribe_events(queue_name)

    def drain(self) -> list[dict[str, Any]]:
        """Read everything queued now; returns the whole log so far."""
        with self._lock:
            self.events.extend(self.stack.take_events(self.queue_url))
            return list(self.events)

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        return [event for event in self.drain() if event["data"]["id"] == job_id]


@dataclass
class ConnectSpy:
    """Every TCP connect any HTTP client in this process attempted (the URL guard's backend included)."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, host: str, port: int) -> None:
        with self._lock:
            self.attempts.append((host, port))

    def hosts(self) -> set[str]:
        with self._lock:
            return {host.strip("[]").lower() for host, _ in self.attempts}


@contextmanager
def spying_on_connects() -> Iterator[ConnectSpy]:
    """Record (host, port) of every outbound connect made through httpcore's sync backend."""
    spy = ConnectSpy()
    original = httpcore.SyncBackend.connect_tcp

    def connect_tcp(backend: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        spy.record(host, port)
        return original(backend, host, port, *args, **kwargs)

    httpcore.SyncBackend.connect_tcp = connect_tcp  # type: ignore[method-assign,assignment]
    try:
        yield spy
    finally:
        httpcore.SyncBackend.connect_tcp = original  # type: ignore[method-assign]


def tagged(prompt: str) -> str:
    """A prompt no other job shares, so emulator faults (`match_prompt`) and tasks select one scenario."""
    return f"{prompt} [{uuid.uuid4().hex[:10]}]"


@dataclass
class Rig:
    stack: LocalSystem
    key: NewKey
    api: RelayClient
    events: EventLog
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30, trust_env=False))

    # -- parts -----------------------------------------------------------------------------------

    @property
    def emulator(self) -> ProviderEmulator:
        assert self.stack.emulator is not None
        return self.stack.emulator

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def bucket(self) -> str:
        return self.stack.outputs["BucketName"]

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.stack.table_name, self.stack.aws.client("dynamodb"))

    def host(self, short_name: str) -> FunctionHost:
        """A deployed function by its short name: api, authorizer, callback, poll, archive, notify, deliver."""
        return self.stack.functions.by_short_name(short_name)

    def client(self, key: NewKey | None = None) -> RelayClient:
        return RelayClient(self.base_url, (key or self.key).api_key)

    def tenant(self, name: str, limits: TenantLimits | None = None) -> NewKey:
        """A new API key for `name` (the tenant is created on first use; the `pro` tier unless `limits` say)."""
        return self.stack.create_api_key(name, limits or TenantLimits(tier=RIG_TIER))

    # -- jobs ------------------------------------------------------------------------------------

    def submit_all(
        self, requests: Sequence[Mapping[str, Any]], *, client: RelayClient | None = None, workers: int = 8
    ) -> list[dict[str, Any]]:
        """Submit concurrently; answers in request order (an `ApiError` is raised for the first refusal).

        Each answer is the job as read once its workflow handed it to a provider (or ended it): admission
        answers `submitting` at once, and these tests look at what dispatch made of the job.
        """
        api = client or self.api

        def submit(request: Mapping[str, Any]) -> dict[str, Any]:
            job = api.submit(dict(request))
            self.wait_dispatched(job["id"])
            return api.get(job["id"])

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(requests)))) as pool:
            return list(pool.map(submit, requests))

    def wait_dispatched(self, job_id: str, timeout: float = JOB_TIMEOUT_SECONDS) -> JobRecord:
        """The job once a provider took it (or it ended)."""

        def left() -> JobRecord | None:
            record = self.record(job_id)
            return None if record.status.value == "submitting" else record

        found: JobRecord = self.wait_for(left, timeout, f"job {job_id} dispatched")
        return found

    def submit_expecting_error(self, request: Mapping[str, Any], *, client: RelayClient | None = None) -> ApiError:
        try:
            job = (client or self.api).submit(dict(request))
        except ApiError as error:
            return error
        raise AssertionError(f"expected the submit to be refused; job {job['id']} is {job['status']}")

    def post_job(
        self, request: Mapping[str, Any], *, key: NewKey | None = None, idempotency_key: str | None = None
    ) -> httpx.Response:
        """`POST /jobs` answered as is (status, headers and body), for refusals a test inspects closely."""
        headers = {"Authorization": f"Bearer {(key or self.key).api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.http.post(f"{self.base_url}/jobs", json=dict(request), headers=headers)

    def wait_terminal(self, job_ids: Sequence[str], timeout: float = JOB_TIMEOUT_SECONDS) -> dict[str, JobRecord]:
        """Each job as stored once it reached a terminal status."""
        deadline = time.monotonic() + timeout
        done: dict[str, JobRecord] = {}
        while True:
            for job_id in job_ids:
                if job_id not in done:
                    record = self.record(job_id)
                    if record.terminal:
                        done[job_id] = record
            if len(done) == len(job_ids):
                return done
            if time.monotonic() > deadline:
                pending = {j: self.record(j).status.value for j in job_ids if j not in done}
                raise AssertionError(f"jobs not finished after {timeout:.0f} s: {pending}\n{self.diagnostics()}")
            time.sleep(0.25)

    def wait_status(self, job_id: str, statuses: set[str], timeout: float = JOB_TIMEOUT_SECONDS) -> JobRecord:
        def reached() -> JobRecord | None:
            record = self.record(job_id)
            return record if record.status.value in statuses else None

        found: JobRecord = self.wait_for(reached, timeout, f"job {job_id} in {sorted(statuses)}")
        return found

    def record(self, job_id: str) -> JobRecord:
        found = self.jobs.get(job_id)
        if found is None:
            raise AssertionError(f"no stored job {job_id}")
        return found

    def raw_item(self, job_id: str) -> dict[str, Any]:
        """The job's DynamoDB item exactly as stored (typed attribute map), for before/after comparisons."""
        answer = self.stack.aws.client("dynamodb").get_item(
            TableName=self.stack.table_name,
            Key=to_attributes({schema.PK: schema.job_pk(job_id), schema.SK: schema.JOB_SK}),
            ConsistentRead=True,
        )
        item: dict[str, Any] = answer["Item"]
        return item

    def tenant_job_ids(self, tenant: str) -> set[str]:
        """Every job id stored for a tenant (read from the table, not through the API)."""
        page = self.jobs.list_for_tenant(tenant, limit=100)
        ids = {job.id for job in page.items}
        while page.next_cursor is not None:
            page = self.jobs.list_for_tenant(tenant, limit=100, cursor=page.next_cursor)
            ids |= {job.id for job in page.items}
        return ids

    # -- provider callbacks made by hand ---------------------------------------------------------

    def callback_token(self, job_id: str, provider: str) -> str:
        return self.host("callback").runtime.signing_keys().callback_token(job_id, provider)

    def callback_url(self, provider: str, job_id: str, token: str | None = None) -> str:
        url = f"{self.base_url}/callbacks/{provider}/{job_id}"
        return f"{url}?{httpx.QueryParams({'token': token})}" if token else url

    def kie_headers(self, task_id: str, *, timestamp: int | None = None, key: str | None = None) -> dict[str, str]:
        """Kie's signature headers for `task_id` at `timestamp` (now by default), with the stack's key."""
        moment = int(time.time()) if timestamp is None else timestamp
        signature = sign_kie_callback(key or self.stack.options.kie_hmac_key, task_id, moment)
        return {TIMESTAMP_HEADER: str(moment), SIGNATURE_HEADER: signature}

    def post_callback(
        self,
        provider: str,
        job_id: str,
        body: bytes | Mapping[str, Any],
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST to our callback route as a provider would: the job's real token unless one is given
        (an empty one sends none)."""
        if token is None:
            token = self.callback_token(job_id, provider)
        content = body if isinstance(body, bytes) else json.dumps(dict(body)).encode()
        return self.http.post(
            self.callback_url(provider, job_id, token),
            content=content,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def provider_callback_body(self, task_id: str) -> dict[str, Any]:
        """The callback body the provider would send for its task as it is now (the emulator's rendering)."""
        engine = self.emulator.engine
        task = engine.find(task_id)
        assert task is not None, f"the emulator has no task {task_id}"
        return engine.apis[task.provider].callback_body(engine.snapshot(task))

    def stop_poller(self, job_id: str) -> None:
        """Stop the job's Step Functions poller, so that only the requests a test makes can move the job."""
        self.stack.aws.client("stepfunctions").stop_execution(
            executionArn=self.execution_arn(job_id), cause="reliability test"
        )

    def genuine_callback(self, task_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The body and signature headers of the emulator's first delivered genuine callback for a task."""
        task = self.emulator.task(task_id)
        assert task is not None, f"the emulator has no task {task_id}"
        for attempt in task.callback_attempts:
            if attempt.label == "genuine" and attempt.delivered and attempt.body is not None:
                return attempt.body, dict(attempt.headers)
        raise AssertionError(f"no genuine callback was delivered for {task_id}: {task.callback_attempts}")

    # -- configuration and faults ----------------------------------------------------------------

    @contextmanager
    def settings_for(self, short_name: str, **changes: Any) -> Iterator[Runtime]:
        """Run one deployed function with some settings changed (e.g. a short provider read timeout)."""
        host = self.host(short_name)
        original = host.runtime
        unknown = set(changes) - set(type(original.settings).model_fields)
        if unknown:
            raise KeyError(f"unknown settings: {sorted(unknown)}")
        host.runtime = Runtime(original.settings.model_copy(update=changes))
        try:
            yield host.runtime
        finally:
            host.runtime = original

    @contextmanager
    def runtime_for(self, short_name: str, runtime: Runtime) -> Iterator[Runtime]:
        """Run one deployed function with a runtime of the test's making (e.g. with a DNS resolver)."""
        host = self.host(short_name)
        original = host.runtime
        host.runtime = runtime
        try:
            yield runtime
        finally:
            host.runtime = original

    def reset_faults(self) -> None:
        self.emulator.clear_faults()
        self.emulator.engine.config.provider_job_seconds.clear()
        self.emulator.set_job_seconds(self.stack.options.job_seconds)
        self.emulator.engine.config.callback_backoff_scale = CALLBACK_BACKOFF_SCALE

    # -- waiting and reporting ---------------------------------------------------------------------

    def wait_for(self, probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
        """The first truthy value of `probe()`; AssertionError naming `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.diagnostics()}")
            time.sleep(interval)

    def wait_idle(self, timeout: float = IDLE_TIMEOUT_SECONDS) -> None:
        """Until the stream and queue mappings have nothing in hand (so every event was published)."""
        assert self.stack.events is not None
        if not self.stack.events.wait_idle(timeout):
            raise AssertionError(f"event sources still busy after {timeout:.0f} s\n{self.diagnostics()}")

    def settled_events(self) -> list[dict[str, Any]]:
        """Every event delivered so far, after the event sources went idle."""
        self.wait_idle()
        return self.events.drain()

    def findings(self, expected: Mapping[str, Expect]) -> Findings:
        """The invariants for these jobs, once every event was published (not raising)."""
        return check_jobs(self.stack, expected, self.settled_events())

    def check(self, expected: Mapping[str, Expect]) -> Findings:
        """The invariants for these jobs; AssertionError listing every broken one."""
        return self.findings(expected).require()

    def execution_arn(self, job_id: str) -> str:
        machine = self.stack.outputs["StateMachineArn"]
        return f"{machine.replace(':stateMachine:', ':execution:')}:{job_id}"

    def diagnostics(self) -> str:
        assert self.stack.events is not None
        hosts = {h.spec.short_name: (h.invocations, h.errors) for h in self.stack.functions.hosts.values()}
        return f"invocations/errors per function: {hosts}\nevent sources: {self.stack.events.summary()}"


@contextmanager
def open_rig(options: LocalOptions = DEFAULT_OPTIONS, tenant: str = "reliability") -> Iterator[Rig]:
    """A started local stack with a tenant key and an event subscription; stopped on exit."""
    with LocalSystem(options) as stack:
        key = stack.create_api_key(tenant, TenantLimits(tier=RIG_TIER))
        events = EventLog(stack)
        events.subscribe()
        rig = Rig(
            stack=stack,
            key=key,
            api=RelayClient(stack.base_url, key.api_key),
            events=events,
        )
        rig.reset_faults()
        try:
            yield rig
        finally:
            rig.http.close()
