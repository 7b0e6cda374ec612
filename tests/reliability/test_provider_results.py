"""Providers failing after the submit: status polls that error or hang (retried), generations that fail,
result URLs that expired, and downloads cut short (retried, or failed with nothing left half-stored)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.services import archive
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROVIDERS = ("vidgo", "kie", "aimlapi", "pixwith", "apimart")


def fault_uses(rig: Rig) -> dict[str, int]:
    return {entry.id: entry.used for entry in rig.emulator.engine.faults.entries()}


@pytest.fixture
def short_poll_timeout(system: Rig) -> Iterator[Rig]:
    """The poll function gives up on a provider's status answer after one second."""
    with system.settings_for("poll", provider_read_timeout=1.0):
        yield system


def test_status_poll_errors_and_timeouts_are_retried_until_the_job_completes(short_poll_timeout: Rig) -> None:
    system = short_poll_timeout
    tag = tagged("status trouble")
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("aimlapi", "status_error", {"status": 500}, 2),
        ("pixwith", "status_error", {"status": 429}, 2),
        ("apimart", "status_error", {"status": 503, "retry_after": 1}, 2),
        ("apimart", "status_error", {"status": 455}, 1),
        ("aimlapi", "latency", {"on": "status", "seconds": 2.5}, 2),
        ("pixwith", "latency", {"on": "status", "seconds": 2.5}, 1),
    ]
    requests: list[dict[str, Any]] = []
    faults: dict[str, int] = {}
    for index, (provider, kind, params, times) in enumerate(cases):
        prompt = f"{tag} {index} {provider} {kind}"
        fault_id = system.emulator.add_fault(kind, provider=provider, match_prompt=prompt, times=times, **params)
        faults[fault_id] = times
        requests.append({"provider": provider, "prompt": prompt})
    jobs = system.submit_all(requests)
    system.wait_terminal([job["id"] for job in jobs], timeout=90)
    used = fault_uses(system)
    assert {fault_id: used[fault_id] for fault_id in faults} == faults, "every fault was met"
    system.check({job["id"]: Expect("succeeded", completed_by="poll") for job in jobs})


def test_a_callback_whose_status_re_read_fails_is_deferred_to_polling(system: Rig) -> None:
    prompt = tagged("callback re-read fails")
    system.emulator.add_fault("status_error", provider="kie", match_prompt=prompt, status=500, times=1)
    job = system.api.submit({"provider": "kie", "prompt": prompt})
    finished = system.wait_terminal([job["id"]])[job["id"]]
    task = system.emulator.task(finished.provider_task_id or "")
    assert task is not None
    assert [(a.label, a.status_code) for a in task.callback_attempts] == [("genuine", 202)]
    system.check({job["id"]: Expect("succeeded", completed_by="poll")})


def test_failed_generations_end_failed_with_the_providers_reason(system: Rig) -> None:
    tag = tagged("refused")
    for provider in PROVIDERS:
        message = f"{provider} refused: prompt violates policy"
        system.emulator.add_fault("generation_failed", provider=provider, match_prompt=tag, message=message)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in PROVIDERS])
    finished = system.wait_terminal([job["id"] for job in jobs])
    for job in finished.values():
        assert job.error is not None
        if job.provider != "pixwith":  # Pixwith's failed tasks carry no reason
            assert f"{job.provider} refused: prompt violates policy" in job.error.message, job.error
    system.check({job["id"]: Expect("failed", error="generation_failed", provider_task=True) for job in jobs})


def test_expired_result_urls_fail_the_job_and_store_nothing(system: Rig) -> None:
    tag = tagged("expired")
    system.emulator.add_fault("result_expired", provider="kie", match_prompt=tag, status=403)
    system.emulator.add_fault("result_expired", provider="aimlapi", match_prompt=tag, status=404)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in ("kie", "aimlapi")])
    finished = system.wait_terminal([job["id"] for job in jobs])
    for job in finished.values():
        assert job.error is not None
        assert "expired or gone" in job.error.message
        task = system.emulator.task(job.provider_task_id or "")
        assert task is not None
        assert task.downloads == 1, "a gone URL is not retried"
    system.check({job["id"]: Expect("failed", error="result_expired", provider_task=True) for job in jobs})


def test_when_the_second_result_url_expired_the_first_output_is_not_left_behind(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two outputs: the first is archived, the second URL answers 404. The job fails as result_expired and the
    first output, already stored, is removed: nothing of a failed job stays visible."""
    prompt = tagged("second output gone")
    original = archive.stream_to_s3

    def second_url_gone(rt: Any, http: Any, url: str, job: Any, key: str) -> archive.Uploaded:
        if job.request.prompt == prompt and key.endswith("output-1.mp4"):
            url = url.replace("output-1.mp4", "output-7.mp4")  # an output the task never had: 404
        return original(rt, http, url, job, key)

    monkeypatch.setattr(archive, "stream_to_s3", second_url_gone)
    job = system.api.submit({"provider": "pixwith", "prompt": prompt, "num_outputs": 2})
    finished = system.wait_terminal([job["id"]])[job["id"]]
    versions = system.stack.aws.client("s3").list_object_versions(
        Bucket=system.bucket, Prefix=f"jobs/{finished.tenant_id}/{finished.id}/"
    )
    assert [v["Key"].rsplit("/", 1)[1] for v in versions.get("Versions", [])] == ["output-0.mp4"], (
        finished.error,
        versions,
    )
    system.check({job["id"]: Expect("failed", error="result_expired")})


def test_a_download_cut_short_once_is_retried_and_archived_once(system: Rig) -> None:
    tag = tagged("truncated once")
    for provider in ("apimart", "vidgo"):
        system.emulator.add_fault("download_truncated", match_prompt=f"{tag} {provider}", after_bytes=2000, times=1)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in ("apimart", "vidgo")])
    finished = system.wait_terminal([job["id"] for job in jobs])
    for job in finished.values():
        task = system.emulator.task(job.provider_task_id or "")
        assert task is not None
        assert task.downloads == 2, "the cut download was retried once"
    system.check({job["id"]: Expect("succeeded") for job in jobs})


def test_a_download_cut_short_every_time_fails_the_job_and_leaves_no_partial_upload(system: Rig) -> None:
    """A 12 MiB result cut at 10 MiB, on every try: the first 8 MiB part reaches S3 each time, then the
    upload is aborted. After three tries the job fails; no object and no open multipart upload remain."""
    prompt = tagged("truncated always")
    system.emulator.add_fault("result_size", match_prompt=prompt, bytes=12 * 1024 * 1024)
    system.emulator.add_fault("download_truncated", match_prompt=prompt, after_bytes=10 * 1024 * 1024)
    job = system.api.submit({"provider": "aimlapi", "prompt": prompt})
    finished = system.wait_terminal([job["id"]], timeout=90)[job["id"]]
    assert finished.error is not None
    assert "10485760 bytes, expected 12582912" in finished.error.message, finished.error
    task = system.emulator.task(finished.provider_task_id or "")
    assert task is not None
    assert task.downloads == archive.SOURCE_ATTEMPTS
    system.check({job["id"]: Expect("failed", error="result_invalid")})
