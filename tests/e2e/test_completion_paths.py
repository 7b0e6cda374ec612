"""Every provider through each completion path it supports, over HTTP, as a client sees it."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

CALLBACK_PROVIDERS = ["vidgo", "kie"]
POLL_ONLY = ["aimlapi", "pixwith", "apimart"]


def check_archived(system: E2E, job: dict[str, Any], outputs: int = 1) -> None:
    assert job["status"] == "succeeded", job.get("error")
    assert len(job["outputs"]) == outputs
    archived, served = system.archived_bytes(job), system.served_bytes(job)
    assert archived == served
    for output, data in zip(job["outputs"], archived, strict=True):
        assert output["sha256"] == hashlib.sha256(data).hexdigest()
        assert output["bytes"] == len(data)
        assert output["content_type"] == "video/mp4"
        assert data[4:8] == b"ftyp"


def check_events(system: E2E, job: dict[str, Any]) -> list[str]:
    events = system.events.for_job(job["id"])
    types = [event["type"] for event in events]
    assert types[0] == "job.queued"
    assert types[-1] == f"job.{job['status']}"
    assert len(types) == len(set(types)), f"a status change was published twice: {types}"
    assert len({event["id"] for event in events}) == len(events)
    assert all("url" not in output for event in events for output in event["data"]["outputs"])
    return types


def test_callback_providers_complete_by_callback(system: E2E) -> None:
    jobs = [
        system.api.submit({"provider": p, "prompt": f"e2e {p} callback", "sound": True}) for p in CALLBACK_PROVIDERS
    ]
    finished = system.wait_all([job["id"] for job in jobs])
    for job in finished.values():
        assert job["completed_by"] == "callback"
        check_archived(system, job)
        assert check_events(system, job)[-2:] == ["job.archiving", "job.succeeded"]


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
def test_callback_providers_complete_by_polling_when_callbacks_are_lost(system: E2E, provider: str) -> None:
    assert system.stack.emulator is not None
    system.stack.emulator.add_fault("callback_drop", provider=provider)
    job = system.api.submit({"provider": provider, "prompt": f"e2e {provider} dropped callback"})
    finished = system.wait_all([job["id"]], timeout=90)[job["id"]]
    assert finished["completed_by"] == "poll"
    check_archived(system, finished)
    check_events(system, finished)


def test_poll_only_providers_complete_by_polling(system: E2E) -> None:
    jobs = [system.api.submit({"provider": p, "prompt": f"e2e {p} poll"}) for p in POLL_ONLY]
    finished = system.wait_all([job["id"] for job in jobs])
    for job in finished.values():
        assert job["completed_by"] == "poll"
        check_archived(system, job)
        # A poll may land after the generation ended (Pixwith and APIMart quote an estimate the poller
        # waits out), so `running` is seen only when a poll falls inside the generation.
        assert check_events(system, job) in (
            ["job.queued", "job.running", "job.archiving", "job.succeeded"],
            ["job.queued", "job.archiving", "job.succeeded"],
        )


def test_image_to_video_with_first_and_last_frames_and_several_outputs(system: E2E) -> None:
    assert system.stack.emulator is not None
    first, last = system.stack.emulator.asset_url("first.png"), system.stack.emulator.asset_url("last.png")
    requests = [
        {"provider": "kie", "prompt": "i2v", "first_frame_url": first, "sound": True},
        {
            "provider": "apimart",
            "prompt": "first+last",
            "quality": "pro",
            "first_frame_url": first,
            "last_frame_url": last,
        },
        {"provider": "pixwith", "prompt": "two outputs", "first_frame_url": first, "num_outputs": 2},
        {"provider": "aimlapi", "prompt": "i2v", "first_frame_url": first, "duration": 10},
    ]
    jobs = [system.api.submit(request) for request in requests]
    finished = system.wait_all([job["id"] for job in jobs])
    for job, request in zip(jobs, requests, strict=True):
        check_archived(system, finished[job["id"]], outputs=request.get("num_outputs", 1))
    submitted = {task.provider: task.submitted for task in system.stack.emulator.tasks()}
    assert submitted["apimart"]["image_urls"] == [first, last]
    assert submitted["kie"]["input"]["image_urls"] == [first]


def test_a_failed_generation_ends_failed_with_the_providers_reason(system: E2E) -> None:
    assert system.stack.emulator is not None
    system.stack.emulator.add_fault("generation_failed", provider="apimart", message="NSFW content detected")
    job = system.api.submit({"provider": "apimart", "prompt": "e2e refused"})
    finished = system.wait_all([job["id"]])[job["id"]]
    assert finished["status"] == "failed"
    assert finished["error"]["code"] == "generation_failed"
    assert "NSFW content detected" in finished["error"]["message"]
    assert finished["outputs"] == []
    assert check_events(system, finished)[-1] == "job.failed"


def test_motion_control_on_every_provider_offering_it(system: E2E) -> None:
    assert system.stack.emulator is not None
    character, dance = system.stack.emulator.asset_url("first.png"), system.stack.emulator.asset_url("motion.mp4")
    motion = {"image_url": character, "video_url": dance}
    requests = [
        {"motion_control": motion},  # auto: the first provider in order that offers it
        {"provider": "aimlapi", "prompt": "dances", "motion_control": {**motion, "keep_original_sound": False}},
        {"provider": "apimart", "quality": "pro", "motion_control": {**motion, "character_orientation": "video"}},
    ]
    jobs = [system.api.submit(request) for request in requests]
    assert [job["provider"] for job in jobs] == ["kie", "aimlapi", "apimart"]
    finished = system.wait_all([job["id"] for job in jobs])
    for job in jobs:
        done = finished[job["id"]]
        check_archived(system, done)
        assert done["request"]["motion_control"]["video_seconds"] == 4.0  # read from the clip's header
        assert done["completed_by"] == ("callback" if done["provider"] == "kie" else "poll")
    assert finished[jobs[0]["id"]]["cost"]["amount"] == 4 * 11  # Kie's per-second estimate at 720p
    assert finished[jobs[1]["id"]]["cost"]["estimated"] is False  # AI/ML API reports what it charged
    submitted = {task.provider: task.submitted for task in system.stack.emulator.tasks()}
    assert submitted["kie"]["input"]["video_urls"] == [dance]
    assert submitted["aimlapi"]["keep_audio"] is False
    assert submitted["apimart"]["mode"] == "pro"
