"""The SDK's models read what the API's own models write, keep what they do not know, and write it back."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from kling_relay import Job, JobEvent, Provider
from kling_relay.models import TERMINAL_STATUSES

from shared.models.common import JobStatus, utcnow
from shared.models.events import event_from_record
from shared.models.job import Attempt, AttemptOutcome, Cost, ErrorCode, JobError, StoredOutput
from shared.services.catalog import provider_catalog
from shared.settings import Settings
from tests.fixtures.jobs import build_job
from tests.unit.sdk.conftest import VIDEO, job_json


def test_a_job_reads_back_to_exactly_what_the_api_sent() -> None:
    sent = job_json(JobStatus.SUCCEEDED, video=VIDEO, progress=100, completed_by="callback")
    sent["attempts"] = [
        json.loads(
            Attempt(provider="kie", at=utcnow(), outcome=AttemptOutcome.ACCEPTED, http_status=200).model_dump_json()
        )
    ]
    sent["cost"] = json.loads(Cost(amount=30.0, basis="5 s with sound").model_dump_json())
    job = Job.model_validate(sent)
    assert job.to_dict() == sent
    assert job.terminal
    assert job.succeeded
    assert job.outputs[0].sha256 == sent["outputs"][0]["sha256"]
    assert job.attempts[0].outcome == "accepted"
    assert job.created_at.tzinfo is not None


def test_fields_and_values_added_later_are_kept() -> None:
    sent = job_json(JobStatus.SUBMITTING)
    sent["status"] = "paused"
    sent["waiting"] = {"reason": "provider_paced", "provider": "kie", "next_attempt_at": "2026-01-01T00:00:05Z"}
    sent["provider_unrecognized"] = {
        "consecutive": 2,
        "total": 3,
        "reason": "unknown status 'weird'",
        "answer": '{"state": "weird"}',
        "at": "2026-01-01T00:00:04Z",
        "hint": "a field added later",
    }
    sent["priority"] = "high"
    sent["request"]["motion_control"] = {
        "image_url": "https://example.com/a.png",
        "video_url": "https://example.com/a.mp4",
        "character_orientation": "video",
        "keep_original_sound": True,
        "strength": 0.7,
    }
    sent["error"] = {"code": "provider_unrecognized", "message": "?", "provider_code": None, "raw": {"a": 1}}
    job = Job.model_validate(sent)
    assert job.to_dict() == sent
    assert not job.terminal
    assert job.waiting is not None
    assert job.waiting.reason == "provider_paced"
    assert job.provider_unrecognized is not None
    assert job.provider_unrecognized.consecutive == 2
    assert job.provider_unrecognized.model_extra == {"hint": "a field added later"}
    assert job.model_extra == {"priority": "high"}
    assert job.request.motion_control is not None
    assert job.request.motion_control.character_orientation == "video"
    assert job.request.motion_control.model_extra == {"strength": 0.7}


def test_the_terminal_statuses_are_the_apis() -> None:
    assert {status.value for status in JobStatus if status.terminal} == TERMINAL_STATUSES


def test_an_event_as_the_relay_publishes_it() -> None:
    record = build_job(
        status=JobStatus.FAILED,
        version=3,
        outputs=(StoredOutput(key="k", bytes=5, sha256="a" * 64, content_type="video/mp4"),),
        error=JobError(code=ErrorCode.GENERATION_FAILED, message="refused", provider_code="400"),
        completed_at=utcnow() + timedelta(seconds=1),
    )
    published = event_from_record(record).model_dump_json()
    event = JobEvent.model_validate_json(published)
    assert event.type == "job.failed"
    assert event.data.id == record.id
    assert event.data.error is not None
    assert (event.data.error.code, event.data.error.provider_code) == ("generation_failed", "400")
    assert event.data.outputs[0].index == 0
    assert event.to_dict() == json.loads(published)


def test_providers_as_the_api_lists_them(client, sleeps) -> None:
    catalog = json.loads(provider_catalog(Settings()).model_dump_json())
    relay, api = client(lambda _: httpx.Response(200, json=catalog))
    providers = relay.providers.list()
    assert [p.name for p in providers] == ["vidgo", "kie", "aimlapi", "pixwith", "apimart"]
    assert all(isinstance(p, Provider) for p in providers)
    assert [p.to_dict() for p in providers] == catalog["providers"]
    kie = providers[1]
    assert kie.capabilities.durations == [5, 10]
    assert kie.capabilities.callbacks
    assert api.requests[0].url.path == "/v1/providers"


def test_fields_are_written_in_the_apis_order() -> None:
    sent = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    assert list(Job.model_validate(sent).to_dict()) == list(sent)
    assert list(Job.model_validate(sent).to_dict()["request"]) == list(sent["request"])
