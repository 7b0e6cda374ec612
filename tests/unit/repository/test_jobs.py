"""The job repository on moto DynamoDB: create, idempotency, races, tenancy, pagination."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import (
    BadRequestError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NotFoundError,
    StaleVersionError,
)
from shared.models.common import JobStatus
from shared.models.request import JobRequest
from shared.repository.jobs import IdempotencyClaim, JobRepository, encode_cursor
from tests.fixtures.jobs import build_job


def test_create_then_read_round_trips_every_field(jobs: JobRepository) -> None:
    request = JobRequest(
        prompt="p",
        cfg_scale=0.35,
        aspect_ratio="9:16",
        metadata={"order": "42"},
        first_frame_url="https://img.example.com/a.png",
    )
    job = build_job(request=request)
    jobs.create(job)
    assert jobs.get(job.id) == job


def test_create_refuses_an_existing_id(jobs: JobRepository) -> None:
    job = build_job()
    jobs.create(job)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        jobs.create(job)


def test_same_idempotency_key_and_request_returns_the_first_job(jobs: JobRepository) -> None:
    request = JobRequest(prompt="same")
    claim = IdempotencyClaim("tenant-a", "key-1", request.fingerprint())
    first = jobs.create(build_job(request=request), claim)
    second = jobs.create(build_job(request=request), claim)
    assert first.created
    assert not second.created
    assert second.job.id == first.job.id


def test_same_idempotency_key_with_another_request_conflicts_and_stores_nothing(jobs: JobRepository) -> None:
    jobs.create(build_job(), IdempotencyClaim("tenant-a", "key-1", JobRequest(prompt="one").fingerprint()))
    other = build_job(request=JobRequest(prompt="two"))
    with pytest.raises(IdempotencyConflictError):
        jobs.create(other, IdempotencyClaim("tenant-a", "key-1", JobRequest(prompt="two").fingerprint()))
    assert jobs.get(other.id) is None


def test_idempotency_keys_are_per_tenant(jobs: JobRepository) -> None:
    fingerprint = JobRequest(prompt="x").fingerprint()
    a = jobs.create(build_job(tenant_id="tenant-a"), IdempotencyClaim("tenant-a", "k", fingerprint))
    b = jobs.create(build_job(tenant_id="tenant-b"), IdempotencyClaim("tenant-b", "k", fingerprint))
    assert a.created
    assert b.created
    assert a.job.id != b.job.id


def test_transition_bumps_version_and_sets_completion(jobs: JobRepository) -> None:
    job = jobs.create(build_job()).job
    queued = jobs.transition(job, JobStatus.QUEUED, provider_task_id="t-1")
    assert (queued.status, queued.version, queued.provider_task_id) == (JobStatus.QUEUED, 1, "t-1")
    failed = jobs.transition(queued, JobStatus.FAILED)
    assert failed.completed_at is not None
    assert jobs.get(job.id) == failed


def test_transition_from_a_stale_read_is_refused(jobs: JobRepository) -> None:
    job = jobs.create(build_job()).job
    jobs.transition(job, JobStatus.QUEUED)
    with pytest.raises(StaleVersionError):
        jobs.transition(job, JobStatus.CANCELED)
    assert jobs.get(job.id).status is JobStatus.QUEUED  # type: ignore[union-attr]


def test_terminal_jobs_never_change(jobs: JobRepository) -> None:
    job = jobs.create(build_job()).job
    done = jobs.transition(job, JobStatus.CANCELED)
    for target in JobStatus:
        with pytest.raises(InvalidTransitionError):
            jobs.transition(done, target)


def test_update_cannot_change_status(jobs: JobRepository) -> None:
    job = jobs.create(build_job()).job
    with pytest.raises(ValueError, match="transition"):
        jobs.update(job, status=JobStatus.RUNNING)
    assert jobs.update(job, progress=40).progress == 40


def test_racing_writers_exactly_one_wins(jobs: JobRepository) -> None:
    job = jobs.transition(jobs.create(build_job()).job, JobStatus.RUNNING)
    targets = [JobStatus.ARCHIVING, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT] * 4
    barrier = threading.Barrier(len(targets))
    wins: list[JobStatus] = []
    losses: list[JobStatus] = []

    def write(target: JobStatus) -> None:
        barrier.wait()
        try:
            jobs.transition(job, target)
            wins.append(target)
        except StaleVersionError:
            losses.append(target)

    threads = [threading.Thread(target=write, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert len(losses) == len(targets) - 1
    stored = jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.version) == (wins[0], job.version + 1)


def test_another_tenants_job_is_not_found(jobs: JobRepository) -> None:
    job = jobs.create(build_job(tenant_id="tenant-a")).job
    assert jobs.get_for_tenant("tenant-a", job.id) == job
    with pytest.raises(NotFoundError):
        jobs.get_for_tenant("tenant-b", job.id)
    with pytest.raises(NotFoundError):
        jobs.get_for_tenant("tenant-a", "job_00000000000000000000000000")
    with pytest.raises(NotFoundError):
        jobs.get_for_tenant("tenant-a", "not-a-job-id")


def _seed(jobs: JobRepository, count: int, tenant: str = "tenant-a", **overrides: object) -> list[str]:
    ids = []
    for i in range(count):
        job = build_job(tenant_id=tenant, provider="kie" if i % 2 else "pixwith", **overrides)
        jobs.create(job)
        ids.append(job.id)
        time.sleep(0.002)  # distinct milliseconds keep creation order = id order
    return ids


def _walk(jobs: JobRepository, tenant: str, limit: int, **filters: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = jobs.list_for_tenant(tenant, limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append([j.id for j in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize("limit", [1, 3, 7, 25])
def test_pagination_is_newest_first_and_neither_skips_nor_repeats(jobs: JobRepository, limit: int) -> None:
    ids = _seed(jobs, 17)
    _seed(jobs, 5, tenant="tenant-b")
    pages = _walk(jobs, "tenant-a", limit)
    flat = [job_id for page in pages for job_id in page]
    assert flat == list(reversed(ids))
    assert all(len(page) <= limit for page in pages)


def test_filtered_pagination_neither_skips_nor_repeats(jobs: JobRepository) -> None:
    ids = _seed(jobs, 20)
    wanted = [job_id for i, job_id in enumerate(ids) if i % 2]  # provider kie
    pages = _walk(jobs, "tenant-a", 3, provider="kie")
    assert [j for page in pages for j in page] == list(reversed(wanted))


def test_status_filter(jobs: JobRepository) -> None:
    ids = _seed(jobs, 4)
    job = jobs.get(ids[1])
    assert job is not None
    jobs.transition(job, JobStatus.QUEUED)
    page = jobs.list_for_tenant("tenant-a", status=JobStatus.QUEUED)
    assert [j.id for j in page.items] == [ids[1]]
    assert page.next_cursor is None


def test_cursor_cannot_reach_another_tenant(jobs: JobRepository) -> None:
    other = _seed(jobs, 3, tenant="tenant-b")
    page = jobs.list_for_tenant("tenant-a", cursor=encode_cursor(other[-1]))
    assert page.items == []


@pytest.mark.parametrize("cursor", ["!!!", "e30", encode_cursor("job_x"), "eyJhZnRlciI6IDF9"])
def test_bad_cursor_is_a_clear_error(jobs: JobRepository, cursor: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        jobs.list_for_tenant("tenant-a", cursor=cursor)
    assert caught.value.details == {"field": "cursor"}


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_bounds(jobs: JobRepository, limit: int) -> None:
    with pytest.raises(BadRequestError):
        jobs.list_for_tenant("tenant-a", limit=limit)


def test_retention_sets_ttl_on_terminal_jobs(dynamodb: object) -> None:
    repo = JobRepository("kling-relay-test-jobs", dynamodb, retention_days=30)
    job = repo.create(build_job()).job
    done = repo.transition(job, JobStatus.CANCELED)
    item = dynamodb.get_item(  # type: ignore[attr-defined]
        TableName="kling-relay-test-jobs", Key={"pk": {"S": f"JOB#{job.id}"}, "sk": {"S": "JOB"}}
    )["Item"]
    assert done.completed_at is not None
    assert int(item["ttl"]["N"]) == int(done.completed_at.timestamp()) + 30 * 86400
