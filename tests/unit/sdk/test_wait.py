"""`jobs.wait`: every status, a job waiting for a provider, progress callbacks and the timeout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from kling_relay import Job, WaitTimeoutError

from shared.models.common import JobStatus, utcnow
from tests.unit.sdk.conftest import VIDEO, async_client, job_json


def sequence(*views: dict) -> object:
    queue = list(views)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0])

    return handle


def lifecycle(final: JobStatus = JobStatus.SUCCEEDED) -> list[dict]:
    job = job_json(JobStatus.SUBMITTING)
    waiting = {
        "reason": "rate_limited",
        "provider": "kie",
        "next_attempt_at": (utcnow() + timedelta(seconds=5)).isoformat().replace("+00:00", "Z"),
    }
    same = {"id": job["id"]}
    return [
        job,
        job_json(JobStatus.SUBMITTING, waiting=waiting, **same),
        job_json(JobStatus.QUEUED, **same),
        job_json(JobStatus.RUNNING, progress=40, **same),
        job_json(JobStatus.ARCHIVING, progress=100, **same),
        job_json(final, video=VIDEO if final == JobStatus.SUCCEEDED else None, **same),
    ]


def test_wait_follows_the_job_through_every_status_and_reports_each_view(client, sleeps) -> None:
    views = lifecycle()
    relay, api = client(sequence(*views))
    seen: list[Job] = []
    final = relay.jobs.wait(views[0]["id"], poll_interval=1.5, on_progress=seen.append)
    assert final.status == "succeeded"
    assert final.outputs[0].bytes == len(VIDEO)
    assert [job.status for job in seen] == ["submitting", "submitting", "queued", "running", "archiving", "succeeded"]
    assert seen[1].waiting is not None
    assert (seen[1].waiting.reason, seen[1].waiting.provider) == ("rate_limited", "kie")
    assert seen[2].waiting is None
    assert seen[3].progress == 40
    assert sleeps == [1.5] * 5
    assert all(request.url.path == f"/v1/jobs/{views[0]['id']}" for request in api.requests)


@pytest.mark.parametrize("final", [JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED])
def test_a_job_that_ends_otherwise_is_returned_not_raised(client, sleeps, final: JobStatus) -> None:
    relay, _ = client(sequence(*lifecycle(final)))
    assert relay.jobs.wait(lifecycle()[0]["id"]).status == final.value


def test_a_status_added_later_is_waited_through(client, sleeps) -> None:
    first = job_json(JobStatus.QUEUED)
    relay, _ = client(sequence({**first, "status": "paused"}, job_json(JobStatus.CANCELED, id=first["id"])))
    assert relay.jobs.wait(first["id"]).status == "canceled"


def test_the_timeout_raises_with_the_last_view_and_the_job_goes_on(client, sleeps, monkeypatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr("kling_relay.jobs.time.monotonic", lambda: float(next(clock)))
    running = job_json(JobStatus.RUNNING, progress=10)
    relay, api = client(lambda _: httpx.Response(200, json=running))
    with pytest.raises(WaitTimeoutError, match="still running after 25 s") as raised:
        relay.jobs.wait(running["id"], timeout=25, poll_interval=30)
    assert raised.value.job.progress == 10
    assert isinstance(raised.value, TimeoutError)
    assert all(request.method == "GET" for request in api.requests)
    assert sleeps == [15.0, 5.0]


def test_the_async_wait_alike(sleeps) -> None:
    views = lifecycle()

    async def scenario() -> Job:
        relay, _ = async_client(sequence(*views))
        return await relay.jobs.wait(views[0]["id"], on_progress=lambda job: None)

    assert asyncio.run(scenario()).status == "succeeded"
    assert len(sleeps) == 5
