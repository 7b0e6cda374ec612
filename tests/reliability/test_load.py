"""Load: jobs submitted at once over all five providers, with callbacks dropped and duplicated.

`make test` runs 60 jobs, `make bench` 300 (`--load-jobs`). Exactly 20 % of the jobs on the callback
providers (Vidgo, Kie) lose their callback (the emulator's `callback_drop`, targeted by a prompt marker)
and 10 % get it twice (`callback_duplicate`). Every job must still succeed (dropped ones by polling),
archived once, with one event id per status change, and the providers must have seen exactly one task
per job. Throughput is printed and written to bench/results/load.json.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.system import LocalOptions
from shared.models.common import PROVIDER_NAMES
from shared.models.job import JobRecord
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect, check_jobs
from tests.support.api_client import ApiError, RelayClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLBACK_PROVIDERS = ("vidgo", "kie")
DROP_SHARE, DUPLICATE_SHARE = 0.20, 0.10
DROP_MARK, DUPLICATE_MARK = "[load:drop-callback]", "[load:duplicate-callback]"
SUBMIT_WORKERS = 8
SUBMIT_ATTEMPTS = 3
RETRYABLE_STATUSES = {503, 504}  # no provider free now; the gateway gave up waiting (the job may exist)
FINISH_TIMEOUT_SECONDS = 150.0
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "load.json"


@pytest.fixture(scope="module")
def rig_options() -> LocalOptions:
    # Short jobs and waits: the load is in the number of jobs, not their length.
    return LocalOptions(
        job_seconds=1.0, poll_min_wait_seconds=1, poll_max_wait_seconds=3, callback_first_wait_seconds=4
    )


@dataclass(frozen=True)
class Planned:
    provider: str
    prompt: str
    fault: str | None  # "drop", "duplicate" or None


@dataclass(frozen=True)
class Throughput:
    jobs: int
    submit_seconds: float
    end_to_end_seconds: float
    submitted_per_second: float
    completed_per_second: float
    submit_latency_p50_ms: float
    submit_latency_p99_ms: float
    submit_workers: int
    job_seconds: float
    callbacks_dropped: int
    callbacks_duplicated: int
    completed_by: dict[str, int]
    submit_retries: dict[str, int]


def plan(per_provider: int) -> list[Planned]:
    """Jobs interleaved across providers; the first 20 % / next 10 % of each callback provider's are faulted."""
    drops = round(per_provider * DROP_SHARE)
    duplicates = round(per_provider * DUPLICATE_SHARE)
    jobs: list[Planned] = []
    for index in range(per_provider):
        for provider in PROVIDER_NAMES:
            fault = None
            if provider in CALLBACK_PROVIDERS and index < drops:
                fault = "drop"
            elif provider in CALLBACK_PROVIDERS and index < drops + duplicates:
                fault = "duplicate"
            mark = {"drop": DROP_MARK, "duplicate": DUPLICATE_MARK}.get(fault or "", "")
            jobs.append(Planned(provider, tagged(f"load {provider} {index} {mark}".strip()), fault))
    return jobs


@pytest.fixture
def clients(system: Rig) -> Iterator[Any]:
    """One HTTP client per submitting thread."""
    local = threading.local()
    made: list[RelayClient] = []
    lock = threading.Lock()

    def client() -> RelayClient:
        if not hasattr(local, "client"):
            local.client = RelayClient(system.base_url, system.key.api_key)
            with lock:
                made.append(local.client)
        return local.client  # type: ignore[no-any-return]

    yield client
    for made_client in made:
        made_client.http.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def completed_at(record: JobRecord) -> float:
    assert record.completed_at is not None, f"{record.id} ended without completed_at"
    return datetime.fromisoformat(str(record.completed_at)).timestamp()


def test_concurrent_jobs_with_dropped_and_duplicated_callbacks_all_complete(
    system: Rig, clients: Any, load_jobs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    per_provider = load_jobs // len(PROVIDER_NAMES)
    jobs = plan(per_provider)
    assert len(jobs) == load_jobs
    faulted = Counter((job.provider, job.fault) for job in jobs if job.fault)
    for provider in CALLBACK_PROVIDERS:
        assert faulted[provider, "drop"] == round(per_provider * DROP_SHARE) > 0
        assert faulted[provider, "duplicate"] == round(per_provider * DUPLICATE_SHARE) > 0
        system.emulator.add_fault(
            "callback_drop", provider=provider, match_prompt=DROP_MARK, times=faulted[provider, "drop"]
        )
        system.emulator.add_fault(
            "callback_duplicate", provider=provider, match_prompt=DUPLICATE_MARK, times=faulted[provider, "duplicate"]
        )
    tasks_before = {task.task_id for task in system.emulator.tasks()}

    retries: Counter[str] = Counter()

    def submit(job: Planned) -> tuple[dict[str, Any], float]:
        """One job, retried as a client should: the same Idempotency-Key after a timeout or a 5xx."""
        key = str(uuid.uuid4())
        started = time.perf_counter()
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                answer = clients().submit({"provider": job.provider, "prompt": job.prompt}, idempotency_key=key)
            except (ApiError, httpx.TimeoutException) as error:
                status = error.status if isinstance(error, ApiError) else 0
                if attempt == SUBMIT_ATTEMPTS or (isinstance(error, ApiError) and status not in RETRYABLE_STATUSES):
                    raise
                retries[f"{status or 'client timeout'}"] += 1
                continue
            return answer, time.perf_counter() - started
        raise AssertionError("unreachable: the last attempt returns or raises")

    started = time.time()
    with ThreadPoolExecutor(max_workers=SUBMIT_WORKERS) as pool:
        answers = list(pool.map(submit, jobs))
    submitted = time.time()
    ids = [answer["id"] for answer, _ in answers]
    assert len(set(ids)) == len(jobs), "two submissions got the same job id"
    # Admitted at once (`submitting`); a fast dispatch may have moved it on before the answer was built.
    assert all(
        answer["status"] in {"submitting", "queued", "running", "archiving", "succeeded"} for answer, _ in answers
    )

    finished = system.wait_terminal(ids, timeout=FINISH_TIMEOUT_SECONDS)
    last_completion = max(completed_at(record) for record in finished.values())

    # Nothing lost: every job is stored for the tenant and succeeded, the faulted ones by the path the fault left.
    assert set(ids) <= system.tenant_job_ids(system.key.tenant)
    expected: dict[str, Expect] = {}
    for job, job_id in zip(jobs, ids, strict=True):
        by = "poll" if job.fault == "drop" or job.provider not in CALLBACK_PROVIDERS else None
        expected[job_id] = Expect(status="succeeded", outputs=1, provider=job.provider, completed_by=by)
    findings = check_jobs(system.stack, expected, system.settled_events()).require()

    # The faults hit exactly the marked jobs, and the providers saw exactly one task per job.
    tasks = {task.task_id: task for task in system.emulator.tasks() if task.task_id not in tasks_before}
    assert len(tasks) == len(jobs), f"{len(tasks)} provider tasks for {len(jobs)} jobs"
    assert Counter(task.prompt for task in tasks.values()) == Counter(job.prompt for job in jobs)
    for job, job_id in zip(jobs, ids, strict=True):
        task = tasks[str(finished[job_id].provider_task_id)]
        labels = [attempt.label for attempt in task.callback_attempts if attempt.delivered]
        if job.fault == "drop":
            assert labels == [], f"{job_id}: a dropped callback was delivered: {labels}"
        elif job.fault == "duplicate":
            assert any(label.startswith("duplicate") for label in labels), f"{job_id}: no duplicate sent: {labels}"
        elif job.provider in CALLBACK_PROVIDERS:
            assert "genuine" in labels, f"{job_id}: the callback was not delivered: {labels}"

    latencies = [seconds for _, seconds in answers]
    end_to_end = last_completion - started
    report = Throughput(
        jobs=len(jobs),
        submit_seconds=round(submitted - started, 2),
        end_to_end_seconds=round(end_to_end, 2),
        submitted_per_second=round(len(jobs) / (submitted - started), 1),
        completed_per_second=round(len(jobs) / end_to_end, 1),
        submit_latency_p50_ms=round(statistics.median(latencies) * 1000, 1),
        submit_latency_p99_ms=round(percentile(latencies, 0.99) * 1000, 1),
        submit_workers=SUBMIT_WORKERS,
        job_seconds=system.stack.options.job_seconds,
        callbacks_dropped=sum(faulted[p, "drop"] for p in CALLBACK_PROVIDERS),
        callbacks_duplicated=sum(faulted[p, "duplicate"] for p in CALLBACK_PROVIDERS),
        completed_by=dict(Counter(str(record.completed_by) for record in finished.values())),
        submit_retries=dict(retries),
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({**asdict(report), "repeated_event_deliveries": findings.repeated_deliveries}, indent=2)
    )
    with capsys.disabled():
        print(f"\n{table(report)}")  # noqa: T201  (the report is the point of this test)


def table(report: Throughput) -> str:
    rows = [
        (
            "jobs",
            f"{report.jobs} ({report.callbacks_dropped} callbacks dropped, {report.callbacks_duplicated} doubled)",
        ),
        (
            "submitted",
            f"{report.submitted_per_second} jobs/s ({report.submit_seconds} s, {report.submit_workers} clients)",
        ),
        ("completed", f"{report.completed_per_second} jobs/s"),
        ("end to end", f"{report.end_to_end_seconds} s (jobs of {report.job_seconds} s at the provider)"),
        ("submit latency", f"p50 {report.submit_latency_p50_ms} ms, p99 {report.submit_latency_p99_ms} ms"),
        ("submit retries", ", ".join(f"{n} after {why}" for why, n in sorted(report.submit_retries.items())) or "none"),
        ("completed by", ", ".join(f"{k} {v}" for k, v in sorted(report.completed_by.items()))),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
