"""The poll function: one check of one job, and how long the state machine should wait next.

Time comes from an injected clock; the repository stamps `updated_at` with the real time, so the
clock starts at the real present and is moved forward explicitly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler as api_handler
from functions.poll import handler
from shared.models.common import JobStatus, utcnow
from shared.models.job import AttemptOutcome, ErrorCode, JobRecord
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.runtime import Runtime
from shared.services import poll as poll_service
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, answer, api_event
from tests.support.workflow import run_dispatch

PROVIDERS = Path(__file__).resolve().parent.parent / "events" / "providers"
VIDGO_TASK = "task-unified-1757165031-uyujaw3d"
KIE_TASK = "281e5b0a4c7d4f1e9b3a6c2d8e0f39b9"
PIXWITH_TASK = "d425ab4dc256f0ebaa84862b9cea8a3d"
VIDGO_STATUS = f"https://api.vidgo.ai/api/generate/status/{VIDGO_TASK}"
KIE_STATUS = "https://api.kie.ai/api/v1/jobs/recordInfo"
PIXWITH_STATUS = "https://api.pixwith.ai/api/task/get"
RESULT_URL = "https://cdn.example.com/results/fox.mp4"

MIN_WAIT = 10
MAX_WAIT = 100
SUBMIT_GRACE = 120
ARCHIVE_GRACE = 600


def provider_json(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROVIDERS / provider / f"{name}.json").read_text())
    return loaded


def vidgo(status: str, progress: int | None = None, *, error: str | None = None) -> dict[str, Any]:
    document = provider_json("vidgo", "status_running")
    document["data"].update(status=status, progress=progress, error_message=error)
    if status == "finished":
        document["data"]["files"] = [{"file_url": RESULT_URL, "file_type": "video"}]
    return document


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Scene:
    cloud: Cloud
    rt: Runtime
    clock: Clock
    router: Any

    def job(self, provider: str = "vidgo", status: JobStatus = JobStatus.QUEUED, **fields: Any) -> JobRecord:
        """A stored job in `status`, created at the clock's time unless told otherwise."""
        task_id = fields.pop(
            "provider_task_id", {"vidgo": VIDGO_TASK, "kie": KIE_TASK, "pixwith": PIXWITH_TASK}[provider]
        )
        now = self.clock()
        values: dict[str, Any] = {"created_at": now, "updated_at": now, "deadline_at": now + timedelta(hours=1)}
        values.update(fields)
        job = build_job(provider=provider, **values)
        self.rt.jobs.create(job)
        if status is JobStatus.SUBMITTING:
            return job
        job = self.rt.jobs.transition(job, JobStatus.QUEUED, provider_task_id=task_id)
        steps = {
            JobStatus.QUEUED: (),
            JobStatus.RUNNING: (JobStatus.RUNNING,),
            JobStatus.ARCHIVING: (JobStatus.ARCHIVING,),
            JobStatus.SUCCEEDED: (JobStatus.ARCHIVING, JobStatus.SUCCEEDED),
            JobStatus.FAILED: (JobStatus.FAILED,),
            JobStatus.CANCELED: (JobStatus.CANCELED,),
            JobStatus.TIMED_OUT: (JobStatus.TIMED_OUT,),
        }[status]
        for step in steps:
            extra = {"result_urls": (RESULT_URL,)} if step is JobStatus.ARCHIVING else {}
            job = self.rt.jobs.transition(job, step, **extra)
        return job

    def item(self, job: JobRecord) -> dict[str, Any]:
        key = to_attributes({schema.PK: schema.job_pk(job.id), schema.SK: schema.JOB_SK})
        found: dict[str, Any] = self.cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)[
            "Item"
        ]
        return found

    def stored(self, job: JobRecord | str) -> JobRecord:
        found = self.rt.jobs.get(job if isinstance(job, str) else job.id)
        assert found is not None
        return found

    def provider_calls(self) -> int:
        return len(self.router.calls)


@pytest.fixture
def scene(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Iterator[Scene]:
    clock = Clock(utcnow())
    rt = cloud.runtime(
        httpx.Client(),
        poll_min_wait_seconds=MIN_WAIT,
        poll_max_wait_seconds=MAX_WAIT,
        poll_backoff_factor=2.0,
        submit_grace_seconds=SUBMIT_GRACE,
        archive_grace_seconds=ARCHIVE_GRACE,
    )
    rt.clock = clock
    install_runtime(rt)
    with respx.mock(assert_all_called=False) as router:
        yield Scene(cloud=cloud, rt=rt, clock=clock, router=router)


def poll(job_id: str, polls: int = 0, wait_seconds: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(
        {"job_id": job_id, "wait_seconds": wait_seconds, "polls": polls}, FakeContext()
    )
    return result


def backoff_bounds(polls: int) -> tuple[float, float]:
    """Where a backoff wait after `polls` checks may land: the base +/- jitter, inside [min, max]."""
    base = min(MAX_WAIT, MIN_WAIT * 2.0**polls)
    return max(MIN_WAIT, base * (1 - poll_service.JITTER)), min(MAX_WAIT, base * (1 + poll_service.JITTER))


def assert_backoff(wait: int, polls: int) -> None:
    low, high = backoff_bounds(polls)
    assert round(low) <= wait <= round(high), (wait, polls, low, high)


# -- finished and missing jobs ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT])
def test_finished_job_is_done_without_asking_the_provider(scene: Scene, status: JobStatus) -> None:
    job = scene.job(status=status)
    before = scene.item(job)

    result = poll(job.id, polls=4, wait_seconds=30)

    assert result == {"job_id": job.id, "wait_seconds": 1, "done": True, "status": status.value, "polls": 4}
    assert scene.provider_calls() == 0
    assert scene.item(job) == before


def test_missing_job_is_done(scene: Scene) -> None:
    missing = build_job().id

    result = poll(missing, polls=2)

    assert result == {"job_id": missing, "wait_seconds": 1, "done": True, "status": "missing", "polls": 2}
    assert scene.provider_calls() == 0


def test_malformed_input_is_refused() -> None:
    with pytest.raises(ValueError, match="job_id"):
        handler.lambda_handler({"job_id": "../../etc", "wait_seconds": 0, "polls": 0}, FakeContext())


# -- the provider's answer moves the job ------------------------------------------------------------------


def test_running_job_records_progress_only_when_it_increases(scene: Scene) -> None:
    job = scene.job()
    route = scene.router.get(VIDGO_STATUS)

    route.respond(200, json=vidgo("running", 45))
    first = poll(job.id)
    after_first = scene.stored(job)
    route.respond(200, json=vidgo("running", 30))
    second = poll(job.id, polls=first["polls"])
    after_second = scene.stored(job)
    route.respond(200, json=vidgo("running", 60))
    third = poll(job.id, polls=second["polls"])

    assert [r["done"] for r in (first, second, third)] == [False, False, False]
    assert [r["status"] for r in (first, second, third)] == ["running"] * 3
    assert [r["polls"] for r in (first, second, third)] == [1, 2, 3]
    assert (after_first.status, after_first.progress, after_first.version) == (JobStatus.RUNNING, 45, job.version + 1)
    assert after_second == after_first  # a lower progress is not written at all
    assert (scene.stored(job).progress, scene.stored(job).version) == (60, job.version + 2)
    assert route.calls.last.request.headers["Authorization"] == "Bearer vidgo-key"


def test_success_moves_to_archiving_and_archiving_waits_without_asking(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    route = scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("finished", 100))

    succeeded = poll(job.id)
    archiving = poll(job.id, polls=succeeded["polls"])

    assert (succeeded["done"], succeeded["status"], succeeded["polls"]) == (False, "archiving", 1)
    stored = scene.stored(job)
    assert (stored.status, stored.result_urls, stored.progress) == (JobStatus.ARCHIVING, (RESULT_URL,), 100)
    assert (archiving["done"], archiving["status"], archiving["polls"]) == (False, "archiving", 1)
    assert route.call_count == 1
    assert scene.stored(job) == stored
    assert_backoff(archiving["wait_seconds"], 1)


def test_failure_fails_the_job_and_is_done(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("failed", 0, error="Content policy violation"))

    result = poll(job.id, polls=3)

    assert result == {"job_id": job.id, "wait_seconds": 1, "done": True, "status": "failed", "polls": 4}
    stored = scene.stored(job)
    assert stored.error is not None
    assert (stored.error.code, stored.error.message) == (ErrorCode.GENERATION_FAILED, "Content policy violation")


def test_success_without_a_result_url_keeps_waiting_then_fails_as_result_missing(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    answer = vidgo("finished", 100)
    answer["data"]["files"] = [{"file_url": "https://cdn.example.com/cover.jpg?sig=s3cret", "file_type": "image"}]
    scene.router.get(VIDGO_STATUS).respond(200, json=answer)
    limit = scene.rt.settings.unrecognized_answer_limit

    results = [poll(job.id, polls=polls) for polls in range(limit)]

    assert [(r["done"], r["status"]) for r in results[:-1]] == [(False, "running")] * (limit - 1)
    assert (results[-1]["done"], results[-1]["status"]) == (True, "failed")
    stored = scene.stored(job)
    assert stored.error is not None
    assert (stored.error.code, stored.error.provider_code) == (ErrorCode.RESULT_MISSING, "finished")
    assert stored.error.details is not None
    assert stored.error.details["consecutive"] == limit
    assert stored.error.details["reason"] == "finished without a recognisable video URL"
    assert "cover.jpg?[redacted]" in stored.error.details["answer"]
    assert "s3cret" not in stored.error.details["answer"]


@pytest.mark.parametrize(
    ("provider", "route", "answer", "reason"),
    [
        ("vidgo", VIDGO_STATUS, vidgo("moderating", None), "unknown status 'moderating'"),
        (
            "pixwith",
            PIXWITH_STATUS,
            {"code": 1, "message": "ok", "data": {"task_id": PIXWITH_TASK, "status": 9}},
            "unknown status '9'",
        ),
        (
            "pixwith",
            PIXWITH_STATUS,
            {"code": 0, "message": "Task is being re-queued"},
            "Task is being re-queued",
        ),
        (
            "kie",
            KIE_STATUS,
            {"code": 200, "msg": "ok", "data": {"taskId": KIE_TASK, "state": "throttled"}},
            "unknown status 'throttled'",
        ),
    ],
    ids=["vidgo", "pixwith", "pixwith-unknown-refusal", "kie"],
)
def test_an_unrecognised_answer_keeps_waiting_and_is_recorded(
    scene: Scene, capsys: pytest.CaptureFixture[str], provider: str, route: str, answer: Any, reason: str
) -> None:
    job = scene.job(provider, status=JobStatus.RUNNING)
    scene.router.route(url=route).respond(200, json=answer)

    result = poll(job.id)

    assert (result["done"], result["status"], result["polls"]) == (False, "running", 1)
    assert_backoff(result["wait_seconds"], 1)
    stored = scene.stored(job)
    assert (stored.status, stored.error) == (JobStatus.RUNNING, None)
    record = stored.provider_unrecognized
    assert record is not None
    assert (record.consecutive, record.total, record.reason) == (1, 1, reason)
    assert record.answer is not None
    assert record.answer.startswith("{")
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert any(m.get("ProviderAnswersUnrecognized") == [1.0] and m.get("provider") == provider for m in metrics)


def test_a_recognised_answer_ends_the_run_of_unrecognised_ones(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    route = scene.router.get(VIDGO_STATUS)
    route.respond(200, json=vidgo("moderating", None))
    poll(job.id)
    poll(job.id, polls=1)
    route.respond(200, json=vidgo("running", 50))
    poll(job.id, polls=2)
    route.respond(200, json=vidgo("moderating", None))
    poll(job.id, polls=3)

    record = scene.stored(job).provider_unrecognized
    assert record is not None
    assert (record.consecutive, record.total) == (1, 3)
    assert scene.stored(job).progress == 50


def test_unrecognised_answers_up_to_the_limit_fail_the_job_with_the_last_answer(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("moderating", None))
    limit = scene.rt.settings.unrecognized_answer_limit

    results = [poll(job.id, polls=polls) for polls in range(limit)]

    assert sum(r["done"] for r in results) == 1
    assert results[-1]["done"]
    stored = scene.stored(job)
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert (stored.error.code, stored.error.provider_code) == (ErrorCode.PROVIDER_UNRECOGNIZED, "moderating")
    assert stored.error.details is not None
    assert stored.error.details["reason"] == "unknown status 'moderating'"
    assert json.loads(stored.error.details["answer"])["data"]["status"] == "moderating"


def test_the_deadline_after_unrecognised_answers_carries_the_last_answer(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("moderating", None))
    poll(job.id)
    scene.clock.advance(3601)

    result = poll(job.id, polls=1)

    assert (result["done"], result["status"]) == (True, "timed_out")
    stored = scene.stored(job)
    assert stored.error is not None
    assert stored.error.code is ErrorCode.DEADLINE_EXCEEDED
    assert stored.error.details is not None
    assert stored.error.details["reason"] == "unknown status 'moderating'"


# -- status API failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(429, json={"code": 429, "msg": "too many requests"}, headers={"Retry-After": "30"}),
        httpx.Response(500, json={"code": 500, "msg": "internal error"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(503, text="unavailable"),
        httpx.Response(404, json={"code": 404, "msg": "task not found"}),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["429", "500", "502", "503", "404", "non-json", "timeout", "connect-error"],
)
def test_status_api_failure_keeps_waiting_and_counts_the_poll(
    scene: Scene, failure: httpx.Response | Exception
) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    route = scene.router.get(VIDGO_STATUS)
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    before = scene.item(job)

    result = poll(job.id, polls=2)

    assert (result["done"], result["status"], result["polls"]) == (False, "running", 3)
    assert route.call_count == 1
    assert scene.item(job) == before
    assert_backoff(result["wait_seconds"], 3)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(422, json={"code": 422, "msg": "The prompt violates the content policy"}),
        httpx.Response(501, json={"code": 501, "msg": "Generation failed"}),
        httpx.Response(200, json={"code": 501, "msg": "Generation failed", "data": None}),
        httpx.Response(200, json={"code": 422, "msg": "Invalid image", "data": {"taskId": KIE_TASK}}),
    ],
    ids=["http-422", "http-501", "envelope-501", "envelope-422"],
)
def test_kie_task_failure_codes_from_record_info_fail_the_job(scene: Scene, answer: httpx.Response) -> None:
    job = scene.job("kie", status=JobStatus.RUNNING)
    route = scene.router.get(KIE_STATUS, params={"taskId": KIE_TASK}).mock(return_value=answer)

    result = poll(job.id)

    assert (result["done"], result["status"], result["polls"]) == (True, "failed", 1)
    assert route.calls.last.request.headers["Authorization"] == "Bearer kie-key"
    stored = scene.stored(job)
    assert stored.error is not None
    assert stored.error.code is ErrorCode.GENERATION_FAILED
    assert stored.error.provider_code == str(answer.json()["code"])
    assert stored.error.message == answer.json()["msg"]


def test_status_request_refused_as_invalid_fails_the_job(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(400, json={"code": 400, "msg": "invalid task id"})

    result = poll(job.id)

    assert (result["done"], result["status"]) == (True, "failed")
    stored = scene.stored(job)
    assert stored.error is not None
    assert (stored.error.code, stored.error.message, stored.error.provider_code) == (
        ErrorCode.GENERATION_FAILED,
        "invalid task id",
        "400",
    )


# -- waiting ----------------------------------------------------------------------------------------------


def test_first_wait_follows_the_providers_estimate(scene: Scene) -> None:
    created = scene.clock()
    job = scene.job("pixwith", status=JobStatus.QUEUED, provider_estimate_seconds=150)
    status = scene.router.post(PIXWITH_STATUS).respond(200, json=provider_json("pixwith", "status_processing"))

    scene.clock.advance(15)  # the state machine's first wait
    first = poll(job.id)
    asked_before_the_estimate = status.call_count
    scene.clock.advance(first["wait_seconds"])
    second = poll(job.id, polls=first["polls"])

    assert asked_before_the_estimate == 0  # the provider said 150 s: no status call before that
    assert (first["wait_seconds"], first["polls"]) == (135, 0)  # ready 150 s after creation, checked at 15 s
    assert scene.clock() == created + timedelta(seconds=150)
    assert status.call_count == 1
    assert_backoff(second["wait_seconds"], 1)  # the estimate has passed: plain backoff from here


def test_pixwith_estimate_recorded_at_submit_sets_the_wait_after_the_first_poll(scene: Scene) -> None:
    scene.router.post("https://api.pixwith.ai/api/task/create").respond(
        200, json=provider_json("pixwith", "submit_accepted")
    )
    scene.router.post(PIXWITH_STATUS).respond(200, json=provider_json("pixwith", "status_processing"))
    submitted = answer(
        api_handler.lambda_handler(
            api_event("POST", "/jobs", body={"prompt": "a fox", "provider": "pixwith"}), FakeContext()
        )
    )
    assert submitted.status == 202
    started = run_dispatch(scene.rt, submitted.body["id"]).output  # the workflow's Dispatch, then its first Wait
    job = scene.stored(submitted.body["id"])

    scene.clock.advance(started["wait_seconds"])  # the state machine's first Wait
    first = poll(job.id, polls=started["polls"])

    assert (job.status, job.provider_task_id, job.provider_estimate_seconds) == (
        JobStatus.QUEUED,
        PIXWITH_TASK,
        150,
    )
    assert (started["job_id"], started["wait_seconds"], started["polls"], started["dispatched"]) == (
        job.id,
        MIN_WAIT,
        0,
        True,
    )
    assert (first["status"], first["done"], first["polls"]) == ("queued", False, 0)  # not asked before 150 s
    assert first["wait_seconds"] == 150 - MIN_WAIT


def test_estimate_far_beyond_the_deadline_is_cut_at_the_deadline(scene: Scene) -> None:
    job = scene.job(
        "pixwith",
        provider_estimate_seconds=10_000,
        deadline_at=scene.clock() + timedelta(seconds=300),
    )
    scene.router.post(PIXWITH_STATUS).respond(200, json=provider_json("pixwith", "status_processing"))

    result = poll(job.id)

    assert result["wait_seconds"] == 301


def test_backoff_grows_exponentially_within_min_and_max(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("running", 10))

    polls = 0
    waits = []
    for _ in range(8):
        result = poll(job.id, polls=polls)
        polls = result["polls"]
        waits.append(result["wait_seconds"])
        assert_backoff(result["wait_seconds"], polls)
        scene.clock.advance(result["wait_seconds"])

    assert all(MIN_WAIT <= wait <= MAX_WAIT for wait in waits)
    assert waits[-1] >= MAX_WAIT * (1 - poll_service.JITTER)


@pytest.mark.parametrize(("spread", "expected"), [("low", [16, 32, 64, 80, 80]), ("high", [24, 48, 96, 100, 100])])
def test_jitter_extremes_stay_inside_min_and_max(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, spread: str, expected: list[int]
) -> None:
    job = scene.job(status=JobStatus.RUNNING)
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("running", 10))
    monkeypatch.setattr(random, "uniform", lambda low, high: low if spread == "low" else high)

    waits = [poll(job.id, polls=n)["wait_seconds"] for n in range(5)]

    assert waits == expected


def test_lowest_jitter_never_polls_sooner_than_the_minimum_wait(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    job = scene.job(status=JobStatus.SUBMITTING)  # not asked about: the wait is the first backoff step
    monkeypatch.setattr(random, "uniform", lambda low, high: low)

    result = poll(job.id)

    assert (result["status"], result["polls"]) == ("submitting", 0)
    assert result["wait_seconds"] == MIN_WAIT


def test_wait_never_reaches_past_the_deadline_and_the_deadline_times_out(scene: Scene) -> None:
    job = scene.job(status=JobStatus.RUNNING, deadline_at=scene.clock() + timedelta(seconds=30))
    route = scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("running", 50))

    before_deadline = poll(job.id, polls=5)  # backoff alone would be the 100 s cap
    scene.clock.advance(before_deadline["wait_seconds"])
    after_deadline = poll(job.id, polls=before_deadline["polls"])

    assert before_deadline["wait_seconds"] == 31  # wakes just past the deadline, never later
    assert after_deadline == {"job_id": job.id, "wait_seconds": 1, "done": True, "status": "timed_out", "polls": 6}
    assert route.call_count == 1  # a job past its deadline is not polled again
    stored = scene.stored(job)
    assert stored.error is not None
    assert stored.error.code is ErrorCode.DEADLINE_EXCEEDED
    assert stored.completed_at is not None


def test_archiving_is_not_cut_by_the_deadline(scene: Scene) -> None:
    job = scene.job(status=JobStatus.ARCHIVING, deadline_at=scene.clock() + timedelta(seconds=60))
    scene.clock.advance(120)
    before = scene.item(job)

    result = poll(job.id, polls=3)

    assert (result["done"], result["status"]) == (False, "archiving")
    assert scene.item(job) == before
    assert scene.provider_calls() == 0


# -- interrupted submissions and stuck archives ---------------------------------------------------------


def test_submitting_job_within_the_grace_period_is_left_alone(scene: Scene) -> None:
    job = scene.job(status=JobStatus.SUBMITTING, handoff_at=scene.clock())
    scene.clock.advance(SUBMIT_GRACE - 1)
    before = scene.item(job)

    result = poll(job.id)

    assert (result["done"], result["status"], result["polls"]) == (False, "submitting", 0)
    assert scene.item(job) == before
    assert scene.provider_calls() == 0


def test_a_job_waiting_for_dispatch_is_never_taken_for_an_interrupted_one(scene: Scene) -> None:
    """Not offered to any provider yet (no handoff mark): it is the dispatch rounds', however long it waits."""
    job = scene.job("kie", status=JobStatus.SUBMITTING)
    scene.clock.advance(SUBMIT_GRACE * 10)
    before = scene.item(job)

    result = poll(job.id)

    assert (result["done"], result["status"]) == (False, "submitting")
    assert scene.item(job) == before
    assert scene.provider_calls() == 0


def test_submitting_job_past_the_grace_period_fails_as_interrupted(scene: Scene) -> None:
    handed = scene.clock() + timedelta(seconds=600)  # after waiting ten minutes for a provider
    job = scene.job("kie", status=JobStatus.SUBMITTING, handoff_at=handed)
    scene.clock.advance(600 + SUBMIT_GRACE - 1)
    assert poll(job.id)["status"] == "submitting"  # the grace counts from the handoff, not the creation
    scene.clock.advance(2)

    result = poll(job.id)

    assert result == {"job_id": job.id, "wait_seconds": 1, "done": True, "status": "failed", "polls": 0}
    assert scene.provider_calls() == 0
    stored = scene.stored(job)
    assert stored.error is not None
    assert stored.error.code is ErrorCode.SUBMIT_INTERRUPTED
    assert "kie" in stored.error.message
    assert [(a.provider, a.outcome, a.at) for a in stored.attempts] == [("kie", AttemptOutcome.INTERRUPTED, handed)]
    assert stored.completed_at is not None


def test_submit_answer_arriving_after_the_poller_gave_up_loses(scene: Scene) -> None:
    job = scene.job(status=JobStatus.SUBMITTING, handoff_at=scene.clock())
    scene.clock.advance(SUBMIT_GRACE + 1)
    poll(job.id)

    with pytest.raises(Exception, match="changed since version 0"):
        scene.rt.jobs.transition(job, JobStatus.QUEUED, provider_task_id=VIDGO_TASK)
    assert scene.stored(job).status is JobStatus.FAILED


def test_archive_within_its_grace_period_is_left_alone(scene: Scene) -> None:
    job = scene.job(status=JobStatus.ARCHIVING)
    scene.clock.advance(ARCHIVE_GRACE - 5)
    before = scene.item(job)

    result = poll(job.id)

    assert (result["done"], result["status"]) == (False, "archiving")
    assert scene.item(job) == before


def test_archive_stuck_past_its_grace_period_fails_naming_the_result_urls(scene: Scene) -> None:
    job = scene.job(status=JobStatus.ARCHIVING)
    scene.clock.advance(ARCHIVE_GRACE + 5)

    result = poll(job.id, polls=7)

    assert result == {"job_id": job.id, "wait_seconds": 1, "done": True, "status": "failed", "polls": 7}
    assert scene.provider_calls() == 0
    stored = scene.stored(job)
    assert stored.error is not None
    assert stored.error.code is ErrorCode.ARCHIVE_FAILED
    assert RESULT_URL in stored.error.message
