"""One provider task, one job: recording a task id claims (provider, task id) in the same transaction."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.errors import StaleVersionError, TaskClaimedError
from shared.models.common import JobStatus
from shared.models.job import JobRecord
from shared.repository import schema
from shared.repository.codec import from_attributes
from shared.repository.jobs import JobRepository, task_claim_key
from tests.fixtures.aws import TABLE
from tests.fixtures.jobs import build_job

TASK = "task-unified-1757165031-uyujaw3d"


def stored(jobs: JobRepository, provider: str = "kie", status: JobStatus = JobStatus.SUBMITTING) -> JobRecord:
    job = build_job(provider=provider, status=status)
    jobs.create(job)
    return job


def claim_item(dynamodb: Any, provider: str, task_id: str) -> dict[str, Any] | None:
    answer = dynamodb.get_item(TableName=TABLE, Key=task_claim_key(provider, task_id), ConsistentRead=True)
    return from_attributes(answer["Item"]) if "Item" in answer else None


def test_recording_a_task_id_claims_the_task_for_the_job(jobs: JobRepository, dynamodb: Any) -> None:
    job = stored(jobs)

    jobs.transition(job, JobStatus.QUEUED, provider_task_id=TASK)

    claim = claim_item(dynamodb, "kie", TASK)
    assert claim is not None
    assert (claim["job_id"], claim["provider"], claim["task_id"], claim[schema.ENTITY]) == (
        job.id,
        "kie",
        TASK,
        "task_claim",
    )
    assert claim[schema.PK].startswith("TASK#kie#")
    assert jobs.task_holder("kie", TASK) == job.id


def test_a_second_job_cannot_record_a_task_another_job_holds_and_is_left_unchanged(jobs: JobRepository) -> None:
    holder = stored(jobs)
    jobs.transition(holder, JobStatus.QUEUED, provider_task_id=TASK)
    other = stored(jobs)

    with pytest.raises(TaskClaimedError) as raised:
        jobs.transition(other, JobStatus.QUEUED, provider_task_id=TASK)

    assert raised.value.status_code == 409
    assert jobs.get(other.id) == other
    assert jobs.task_holder("kie", TASK) == holder.id


def test_an_update_after_the_claim_needs_no_new_claim_and_keeps_it(jobs: JobRepository) -> None:
    job = jobs.transition(stored(jobs), JobStatus.QUEUED, provider_task_id=TASK)

    job = jobs.transition(job, JobStatus.RUNNING)
    job = jobs.update(job, progress=40)

    assert (job.status, job.progress, job.version) == (JobStatus.RUNNING, 40, 3)
    assert jobs.task_holder("kie", TASK) == job.id


def test_the_same_task_id_at_another_provider_is_another_task(jobs: JobRepository) -> None:
    kie = jobs.transition(stored(jobs, "kie"), JobStatus.QUEUED, provider_task_id=TASK)
    vidgo = jobs.transition(stored(jobs, "vidgo"), JobStatus.QUEUED, provider_task_id=TASK)

    assert (jobs.task_holder("kie", TASK), jobs.task_holder("vidgo", TASK)) == (kie.id, vidgo.id)


def test_a_stale_write_claims_nothing(jobs: JobRepository) -> None:
    job = stored(jobs)
    jobs.update(job, progress=1)  # someone else moved the job on

    with pytest.raises(StaleVersionError):
        jobs.transition(job, JobStatus.QUEUED, provider_task_id=TASK)

    assert jobs.task_holder("kie", TASK) is None


def test_task_ids_of_any_length_and_alphabet_are_claimed_by_their_hash(jobs: JobRepository, dynamodb: Any) -> None:
    task_id = "ü#" * 2000  # longer than a DynamoDB key may be
    job = jobs.transition(stored(jobs), JobStatus.QUEUED, provider_task_id=task_id)

    assert jobs.task_holder("kie", task_id) == job.id
    assert jobs.task_holder("kie", task_id[:-1]) is None


def test_racing_jobs_recording_the_same_task_one_wins_and_the_other_is_untouched(jobs: JobRepository) -> None:
    contenders = [stored(jobs) for _ in range(8)]
    start = threading.Barrier(len(contenders))
    won: list[str] = []
    refused: list[str] = []

    def record(job: JobRecord) -> None:
        start.wait()
        try:
            jobs.transition(job, JobStatus.QUEUED, provider_task_id=TASK)
        except TaskClaimedError:
            refused.append(job.id)
        else:
            won.append(job.id)

    threads = [threading.Thread(target=record, args=(job,)) for job in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1
    assert len(refused) == len(contenders) - 1
    assert jobs.task_holder("kie", TASK) == won[0]
    for job in contenders:
        current = jobs.get(job.id)
        assert current is not None
        assert current == job if job.id in refused else current.provider_task_id == TASK


def test_claims_expire_after_the_job_could_have_been_kept(dynamodb: Any) -> None:
    jobs = JobRepository(TABLE, dynamodb, retention_days=30)
    job = jobs.transition(stored(jobs), JobStatus.QUEUED, provider_task_id=TASK)

    claim = claim_item(dynamodb, "kie", TASK)

    assert claim is not None
    assert int(claim[schema.TTL_ATTRIBUTE]) == int(job.deadline_at.timestamp()) + 31 * 86_400
