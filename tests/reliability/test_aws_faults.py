"""The AWS side failing: S3 in the middle of an upload, a function dying between two of its steps (its re-run
must be safe), and the stream handler failing for one record of a batch.

Faults are injected in this process: into moto's backends (what S3 answers) or into the shared step a
function runs (where it dies). S3's `InternalError` raised inside moto reaches the function as a failed
call (moto answers it with 400, so boto3 does not retry it: one injected failure is one failed call).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend

from functions.notify import handler as notify_handler  # its `publish` is where notify dies
from shared.models.common import JobStatus
from shared.repository.jobs import JobRepository
from shared.services import dispatch
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RESULT_BYTES = 12 * 1024 * 1024  # two multipart parts of 8 MiB and 4 MiB


class InjectedFault(RuntimeError):
    """A failure a test put there on purpose."""


def s3_internal_error(operation: str) -> S3ClientError:
    return S3ClientError("InternalError", f"We encountered an internal error (injected into {operation}).")


@dataclass
class Trip:
    """Fails matching calls `failures` times, then lets them through; counts what it saw."""

    failures: int
    matched: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fire(self) -> bool:
        with self._lock:
            self.matched += 1
            if self.failed < self.failures:
                self.failed += 1
                return True
            return False


@contextmanager
def patched(target: Any, name: str, make: Callable[[Any], Any]) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, make(original))
    try:
        yield
    finally:
        setattr(target, name, original)


def multipart_key(backend: S3Backend, bucket: str, upload_id: str) -> str:
    return str(backend.get_bucket(bucket).multiparts[upload_id].key_name)


def versions_of(rig: Rig, job_id: str) -> list[str]:
    record = rig.record(job_id)
    answer = rig.stack.aws.client("s3").list_object_versions(
        Bucket=rig.bucket, Prefix=f"jobs/{record.tenant_id}/{job_id}/"
    )
    return [str(version["VersionId"]) for version in answer.get("Versions", [])]


def test_the_local_videos_bucket_is_configured_as_the_template_says(rig: Rig) -> None:
    s3 = rig.stack.aws.client("s3")
    bucket = rig.stack.outputs["BucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for rule in rules] == [1]
    blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocked.values())


def test_s3_failing_in_the_middle_of_an_upload_is_retried_and_archives_once(system: Rig) -> None:
    prompt = tagged("s3 fails on part two")
    system.emulator.add_fault("result_size", match_prompt=prompt, bytes=RESULT_BYTES)
    trip = Trip(failures=1)
    job_ids: list[str] = []

    def upload_part(original: Callable[..., Any]) -> Callable[..., Any]:
        def failing(backend: S3Backend, bucket: str, upload_id: str, part_id: int, value: bytes) -> Any:
            key = multipart_key(backend, bucket, upload_id)
            if part_id == 2 and any(job_id in key for job_id in job_ids) and trip.fire():
                raise s3_internal_error("UploadPart")
            return original(backend, bucket, upload_id, part_id, value)

        return failing

    with patched(S3Backend, "upload_part", upload_part):
        job = system.api.submit({"provider": "apimart", "prompt": prompt})
        job_ids.append(job["id"])
        finished = system.wait_terminal([job["id"]], timeout=90)[job["id"]]
    assert (trip.failed, trip.matched) == (1, 2), "part two failed once, and the re-run sent it again"
    assert len(versions_of(system, job["id"])) == 1
    task = system.emulator.task(finished.provider_task_id or "")
    assert task is not None
    assert task.downloads == 2, "the re-run downloaded the result again"
    system.check({job["id"]: Expect("succeeded", completed_by="poll")})


def test_the_archive_dying_after_storing_the_video_but_before_recording_it_re_runs_safely(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = tagged("archive dies before recording")
    trip = Trip(failures=1)
    original = JobRepository.transition

    def transition(repo: JobRepository, job: Any, status: JobStatus, **fields: Any) -> Any:
        if status is JobStatus.SUCCEEDED and job.request.prompt == prompt and trip.fire():
            raise InjectedFault("the archive function stopped before recording its outputs")
        return original(repo, job, status, **fields)

    monkeypatch.setattr(JobRepository, "transition", transition)
    job = system.api.submit({"provider": "pixwith", "prompt": prompt, "num_outputs": 2})
    finished = system.wait_terminal([job["id"]])[job["id"]]
    assert trip.failed == 1
    task = system.emulator.task(finished.provider_task_id or "")
    assert task is not None
    assert task.downloads == 2, "the re-run found both outputs stored and downloaded nothing again"
    assert len(versions_of(system, job["id"])) == 2
    system.check({job["id"]: Expect("succeeded")})


def test_the_archive_dying_between_completing_and_tagging_an_upload_re_runs_without_storing_twice(
    system: Rig,
) -> None:
    prompt = tagged("archive dies before tagging")
    trip = Trip(failures=1)
    job_ids: list[str] = []

    def put_object_tagging(original: Callable[..., Any]) -> Callable[..., Any]:
        def failing(backend: S3Backend, key: Any, tags: Any, *args: Any, **kwargs: Any) -> Any:
            if any(job_id in key.name for job_id in job_ids) and trip.fire():
                raise s3_internal_error("PutObjectTagging")
            return original(backend, key, tags, *args, **kwargs)

        return failing

    with patched(S3Backend, "put_object_tagging", put_object_tagging):
        job = system.api.submit({"provider": "aimlapi", "prompt": prompt})
        job_ids.append(job["id"])
        finished = system.wait_terminal([job["id"]])[job["id"]]
    assert trip.failed == 1
    assert len(versions_of(system, job["id"])) == 1
    task = system.emulator.task(finished.provider_task_id or "")
    assert task is not None
    assert task.downloads == 1, "the re-run hashed the stored object instead of downloading again"
    system.check({job["id"]: Expect("succeeded")})


def test_the_dispatcher_dying_after_the_provider_accepted_is_settled_by_the_callback_or_the_poller(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatch function stops between the provider's answer and recording it (the app had its 202 long
    before). Step Functions runs Dispatch again: it finds the handoff mark and never offers the job again, to
    that provider or any other. Vidgo's callback (it carries the job id) adopts the task, and a poll-only
    provider's job is failed as `submit_interrupted` once the grace period is over, with the orphan task left
    at the provider."""
    tag = tagged("dispatcher dies")
    original = dispatch._accepted
    deaths: list[str] = []

    def accepted(rt: Any, job: Any, name: Any, result: Any) -> Any:
        if tag in job.request.prompt:
            deaths.append(job.id)
            raise InjectedFault("the dispatch function stopped before recording the provider's answer")
        return original(rt, job, name, result)

    monkeypatch.setattr(dispatch, "_accepted", accepted)
    with system.settings_for("poll", submit_grace_seconds=5), system.settings_for("dispatch", submit_grace_seconds=5):
        answers = [system.post_job({"provider": p, "prompt": f"{tag} {p}"}) for p in ("vidgo", "aimlapi")]
        assert [answer.status_code for answer in answers] == [202, 202], [a.text for a in answers]
        vidgo_job, aimlapi_job = (answer.json()["id"] for answer in answers)
        system.wait_terminal([vidgo_job, aimlapi_job], timeout=60)
    assert sorted(deaths) == sorted([vidgo_job, aimlapi_job])  # each died once; the retried round sent nothing
    vidgo_tasks = [t for t in system.emulator.tasks("vidgo") if t.prompt == f"{tag} vidgo"]
    aimlapi_tasks = [t for t in system.emulator.tasks("aimlapi") if t.prompt == f"{tag} aimlapi"]
    assert (len(vidgo_tasks), len(aimlapi_tasks)) == (1, 1), "one task per job: the retried Dispatch sent nothing"
    assert system.record(vidgo_job).provider_task_id == vidgo_tasks[0].task_id
    interrupted = system.record(aimlapi_job)
    assert [a.outcome.value for a in interrupted.attempts] == ["interrupted"]
    system.check(
        {
            vidgo_job: Expect("succeeded", completed_by="callback"),
            aimlapi_job: Expect("failed", error="submit_interrupted", provider_task=False),
        }
    )


def test_notify_dying_after_publishing_republishes_the_same_event_id(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = tagged("notify dies after publishing")
    trip = Trip(failures=1)
    original = notify_handler.publish  # type: ignore[attr-defined]

    def publish(rt: Any, event: Any, job: Any) -> str:
        message_id = original(rt, event, job)
        if job.request.prompt == prompt and job.status is JobStatus.ARCHIVING and trip.fire():
            raise InjectedFault("the notify function stopped before acknowledging the record")
        return message_id

    monkeypatch.setattr(notify_handler, "publish", publish)
    job = system.api.submit({"provider": "kie", "prompt": prompt})
    system.wait_terminal([job["id"]])
    findings = system.check({job["id"]: Expect("succeeded", completed_by="callback")})
    assert trip.failed == 1
    archiving = [e for e in system.events.for_job(job["id"]) if e["type"] == "job.archiving"]
    assert len(archiving) == 2, "delivered twice"
    assert len({e["id"] for e in archiving}) == 1, "under one id"
    assert findings.repeated_deliveries >= 1


def test_one_failing_record_in_a_notify_batch_is_retried_without_losing_or_renaming_the_others(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = tagged("notify batch")
    prompts = [f"{tag} {index}" for index in range(5)]
    trip = Trip(failures=2)
    original = notify_handler.publish  # type: ignore[attr-defined]

    def publish(rt: Any, event: Any, job: Any) -> str:
        if job.request.prompt == prompts[2] and job.status is JobStatus.QUEUED and trip.fire():
            raise InjectedFault("SNS refused one publish")
        return original(rt, event, job)

    monkeypatch.setattr(notify_handler, "publish", publish)
    # Submitted together, the five jobs' first changes reach notify in the same batches.
    jobs = system.submit_all([{"provider": "apimart", "prompt": prompt} for prompt in prompts])
    system.wait_terminal([job["id"] for job in jobs])
    system.check({job["id"]: Expect("succeeded", completed_by="poll") for job in jobs})
    assert trip.failed == 2


def test_a_record_notify_can_never_publish_goes_to_its_dead_letter_queue_and_nothing_else_is_lost(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = tagged("notify never publishes success")
    original = notify_handler.publish  # type: ignore[attr-defined]
    refused = Trip(failures=1000)

    def publish(rt: Any, event: Any, job: Any) -> str:
        if job.request.prompt == prompt and job.status is JobStatus.SUCCEEDED and refused.fire():
            raise InjectedFault("SNS refuses this publish every time")
        return original(rt, event, job)

    monkeypatch.setattr(notify_handler, "publish", publish)
    job = system.api.submit({"provider": "vidgo", "prompt": prompt})
    system.wait_terminal([job["id"]])
    findings = system.findings({job["id"]: Expect("succeeded", completed_by="callback")})
    [missing] = findings.problems
    assert missing.startswith(f"{job['id']}: no event for the change to succeeded"), findings.problems
    assert refused.failed == 6, "the first try and MaximumRetryAttempts (5) retries"

    assert system.stack.deployer is not None
    queue = next(
        url for name, url in system.stack.deployer.physical.items() if "NotifyFailures" in name and "Policy" not in name
    )
    sqs = system.stack.aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1, messages
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
