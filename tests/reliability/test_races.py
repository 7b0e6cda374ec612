"""Races: a provider callback and a poll completing the same job at the same moment, cancels racing the
completion (and each other). Whoever wins, the job changes status once per step, archives at most once,
and a canceled job keeps nothing in the bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LONG_JOB_SECONDS = 60.0  # the provider's tasks end only when a test ends them


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on their own threads, released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def waiting_jobs(rig: Rig, tag: str, providers: list[str]) -> list[dict[str, Any]]:
    """Jobs whose provider tasks run until ended by hand, and whose callbacks the provider will not send."""
    rig.emulator.add_fault("callback_drop", match_prompt=tag)
    for provider in set(providers):
        rig.emulator.set_job_seconds(LONG_JOB_SECONDS, provider=provider)
    return rig.submit_all([{"provider": p, "prompt": f"{tag} {i} {p}"} for i, p in enumerate(providers)])


def finish_at_provider(rig: Rig, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """End the job's provider task now; the callback the provider would send (body, Kie signature)."""
    task_id = job["provider_task_id"]
    rig.emulator.finish(task_id, "success")
    body = rig.provider_callback_body(task_id)
    headers = rig.kie_headers(task_id) if job["provider"] == "kie" else {}
    return body, headers


def test_a_callback_and_a_poll_completing_the_same_job_at_once_archive_it_once(system: Rig) -> None:
    tag = tagged("callback races poll")
    jobs = waiting_jobs(system, tag, ["vidgo", "kie"] * 4)
    poll = system.host("poll")

    def race(job: dict[str, Any]) -> tuple[httpx.Response, dict[str, Any]]:
        body, headers = finish_at_provider(system, job)
        callback, polled = at_once(
            lambda: system.post_callback(job["provider"], job["id"], body, headers=headers),
            lambda: poll.invoke({"job_id": job["id"], "wait_seconds": 1, "polls": 1}),
        )
        return callback, polled

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(race, jobs))
    for callback, polled in outcomes:
        assert callback.status_code == 200, callback.text
        assert callback.json()["result"] in ("applied", "ignored")
        assert polled["status"] in ("archiving", "succeeded")
    finished = system.wait_terminal([job["id"] for job in jobs])
    sources = {job.completed_by for job in finished.values()}
    assert sources <= {"callback", "poll"}
    system.check({job["id"]: Expect("succeeded") for job in jobs})


def test_cancel_racing_the_completing_callback_ends_one_way_and_keeps_nothing_if_canceled(system: Rig) -> None:
    tag = tagged("cancel races callback")
    jobs = waiting_jobs(system, tag, ["vidgo", "kie"] * 3)

    def race(job: dict[str, Any]) -> tuple[httpx.Response, httpx.Response]:
        body, headers = finish_at_provider(system, job)
        cancel, callback = at_once(
            lambda: system.http.post(
                f"{system.base_url}/jobs/{job['id']}/cancel", headers={"Authorization": f"Bearer {system.key.api_key}"}
            ),
            lambda: system.post_callback(job["provider"], job["id"], body, headers=headers),
        )
        return cancel, callback

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(race, jobs))
    finished = system.wait_terminal([job["id"] for job in jobs])
    expected: dict[str, Expect] = {}
    for job, (cancel, callback) in zip(jobs, outcomes, strict=True):
        final = finished[job["id"]]
        assert callback.status_code == 200, callback.text
        if cancel.status_code == 200:
            assert final.status.value == "canceled", (cancel.text, final.status)
            expected[job["id"]] = Expect("canceled", error="canceled")
        else:
            assert (cancel.status_code, cancel.json()["error"]["code"]) == (409, "job_terminal"), cancel.text
            assert final.status.value == "succeeded"
            expected[job["id"]] = Expect("succeeded", completed_by="callback")
    system.check(expected)


def test_cancel_while_the_video_is_being_archived_removes_what_the_archive_stored(system: Rig) -> None:
    """The archive downloads slowly; the job is canceled meanwhile. The upload finishes, then the archive finds
    the job canceled and deletes what it stored: one version, hidden under a delete marker."""
    prompt = tagged("cancel while archiving")
    system.emulator.add_fault("download_slow", match_prompt=prompt, bytes_per_second=2000)
    [job] = system.submit_all([{"provider": "kie", "prompt": prompt}])

    def downloading() -> bool:
        task = system.emulator.task(job["provider_task_id"])
        return task is not None and task.downloads == 1

    system.wait_for(downloading, 20, "the archive to start downloading")
    canceled = system.api.cancel(job["id"])
    assert canceled["status"] == "canceled"

    def archive_done() -> bool:
        versions = system.stack.aws.client("s3").list_object_versions(
            Bucket=system.bucket, Prefix=f"jobs/{system.key.tenant}/{job['id']}/"
        )
        return bool(versions.get("Versions")) and bool(versions.get("DeleteMarkers"))

    system.wait_for(archive_done, 30, "the archive to store and then remove the output")
    system.check({job["id"]: Expect("canceled", error="canceled", completed_by="callback")})


def test_concurrent_cancels_change_the_job_once(system: Rig) -> None:
    tag = tagged("cancel twice")
    [job] = waiting_jobs(system, tag, ["pixwith"])
    answers = at_once(
        *[
            lambda: system.http.post(
                f"{system.base_url}/jobs/{job['id']}/cancel", headers={"Authorization": f"Bearer {system.key.api_key}"}
            )
            for _ in range(4)
        ]
    )
    assert {answer.status_code for answer in answers} <= {200, 409}
    assert 200 in {answer.status_code for answer in answers}
    system.check({job["id"]: Expect("canceled", error="canceled")})
