"""One local stack per test worker: the synthesized template in moto, the real handlers, the emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from local.system import LocalOptions, LocalSystem, NewKey
from shared.repository.keys import TenantLimits
from tests.support.api_client import TERMINAL, RelayClient


@dataclass
class EventLog:
    """Every SNS event, read through an SQS subscription of our own (as an app would subscribe)."""

    stack: LocalSystem
    queue_url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self) -> None:
        self.queue_url = self.stack.subscribe_events("e2e-events")

    def drain(self) -> None:
        with self._lock:
            self.events.extend(self.stack.take_events(self.queue_url))

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        assert self.stack.events is not None
        self.stack.events.wait_idle(15)
        self.drain()
        return [event for event in self.events if event["data"]["id"] == job_id]


@dataclass
class E2E:
    stack: LocalSystem
    key: NewKey
    api: RelayClient
    events: EventLog

    def client(self, key: NewKey | None = None) -> RelayClient:
        return RelayClient(self.stack.base_url, (key or self.key).api_key)

    def wait_all(self, job_ids: list[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        while len(done) < len(job_ids):
            for job_id in job_ids:
                if job_id not in done:
                    job = self.api.get(job_id)
                    if job["status"] in TERMINAL:
                        done[job_id] = job
            if time.monotonic() > deadline:
                pending = {j: self.api.get(j)["status"] for j in job_ids if j not in done}
                raise AssertionError(f"jobs still running after {timeout} s: {pending}\n{self.diagnostics()}")
            time.sleep(0.3)
        return done

    def diagnostics(self) -> str:
        assert self.stack.events is not None
        hosts = {h.spec.short_name: (h.invocations, h.errors) for h in self.stack.functions.hosts.values()}
        return f"invocations/errors per function: {hosts}\nevent sources: {self.stack.events.summary()}"

    def served_bytes(self, job: dict[str, Any]) -> list[bytes]:
        """What the provider emulator served for the job's task (its result URLs, fetched now)."""
        assert self.stack.emulator is not None
        task = self.stack.emulator.task(job["provider_task_id"])
        assert task is not None
        with httpx.Client(timeout=30) as http:
            return [http.get(url).content for url in task.result_urls]

    def archived_bytes(self, job: dict[str, Any]) -> list[bytes]:
        with httpx.Client(timeout=30) as http:
            return [http.get(output["url"]).content for output in job["outputs"]]


# One stack per test module: moto's state is process-wide, so a stack must not outlive its module
# while other modules' tests (with their own moto mocks) run in the same worker.
@pytest.fixture(scope="module")
def e2e() -> Iterator[E2E]:
    with LocalSystem(LocalOptions(job_seconds=2.0)) as stack:
        # The highest default tier: tests poll many jobs at once, as a busy app would.
        key = stack.create_api_key("e2e", TenantLimits(tier="pro"))
        events = EventLog(stack)
        events.subscribe()
        yield E2E(stack=stack, key=key, api=RelayClient(stack.base_url, key.api_key), events=events)


@pytest.fixture
def system(e2e: E2E) -> Iterator[E2E]:
    """The shared stack with no faults left over from another test."""
    assert e2e.stack.emulator is not None
    e2e.stack.emulator.clear_faults()
    yield e2e
    e2e.stack.emulator.clear_faults()
