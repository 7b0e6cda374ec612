"""`GET /jobs?status=` reads the `by_status` index: one query per page whatever the tenant's history, kept
consistent by every write (a status change moves the job), and back-filled for items written before it."""

from __future__ import annotations

from typing import Any

import pytest

from shared.ids import new_job_id
from shared.models.common import JobStatus
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.repository.jobs import JobRepository
from tests.fixtures.aws import TABLE
from tests.fixtures.jobs import build_job

BASE_MS = 1_800_000_000_000


class CountingClient:
    """The DynamoDB client, counting queries and the items they read (what DynamoDB bills a filter for)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.queries: list[dict[str, Any]] = []
        self.scanned = 0

    def query(self, **kwargs: Any) -> Any:
        answer = self.inner.query(**kwargs)
        self.queries.append(kwargs)
        self.scanned += int(answer.get("ScannedCount", 0))
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def counted(jobs: JobRepository) -> tuple[JobRepository, CountingClient]:
    client = CountingClient(jobs.client)
    return JobRepository(TABLE, client), client


def seed(jobs: JobRepository, statuses: list[JobStatus], tenant: str = "tenant-a") -> list[str]:
    """Jobs created in order (ids sort by creation), each moved to its status along the lifecycle."""
    ids = []
    for offset, status in enumerate(statuses):
        job = build_job(tenant_id=tenant, id=new_job_id(now_ms=BASE_MS + offset))
        jobs.create(job)
        path = {
            JobStatus.SUBMITTING: [],
            JobStatus.QUEUED: [JobStatus.QUEUED],
            JobStatus.RUNNING: [JobStatus.QUEUED, JobStatus.RUNNING],
            JobStatus.FAILED: [JobStatus.FAILED],
            JobStatus.SUCCEEDED: [JobStatus.QUEUED, JobStatus.ARCHIVING, JobStatus.SUCCEEDED],
        }[status]
        for step in path:
            job = jobs.transition(job, step, provider_task_id=f"t-{job.id}")
        ids.append(job.id)
    return ids


def test_a_rare_status_is_one_query_reading_only_its_jobs(counted: tuple[JobRepository, CountingClient]) -> None:
    jobs, client = counted
    statuses = [JobStatus.SUCCEEDED] * 60
    statuses[7] = statuses[41] = JobStatus.FAILED
    ids = seed(jobs, statuses)
    client.queries.clear()
    client.scanned = 0

    page = jobs.list_for_tenant("tenant-a", status=JobStatus.FAILED, limit=20)

    assert [job.id for job in page.items] == [ids[41], ids[7]]
    assert page.next_cursor is None
    assert len(client.queries) == 1
    assert client.queries[0]["IndexName"] == schema.GSI2
    assert "FilterExpression" not in client.queries[0]
    assert client.scanned == 2  # not the tenant's 60 jobs


def test_a_status_change_moves_the_job_between_lists(jobs: JobRepository) -> None:
    (job_id,) = seed(jobs, [JobStatus.QUEUED])

    def listed(status: JobStatus) -> list[str]:
        return [job.id for job in jobs.list_for_tenant("tenant-a", status=status).items]

    assert (listed(JobStatus.QUEUED), listed(JobStatus.RUNNING)) == ([job_id], [])
    job = jobs.get(job_id)
    assert job is not None
    jobs.transition(job, JobStatus.RUNNING)
    assert (listed(JobStatus.QUEUED), listed(JobStatus.RUNNING)) == ([], [job_id])
    running = jobs.get(job_id)
    assert running is not None
    jobs.update(running, progress=50)  # a write without a status change keeps it where it is
    assert listed(JobStatus.RUNNING) == [job_id]


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_status_pages_are_newest_first_and_neither_skip_nor_repeat(jobs: JobRepository, limit: int) -> None:
    statuses = [JobStatus.QUEUED if i % 3 == 0 else JobStatus.RUNNING for i in range(14)]
    ids = seed(jobs, statuses)
    wanted = [job_id for job_id, status in zip(ids, statuses, strict=True) if status is JobStatus.QUEUED]

    seen: list[str] = []
    cursor = None
    while True:
        page = jobs.list_for_tenant("tenant-a", status=JobStatus.QUEUED, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [job.id for job in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(wanted))


def test_status_and_provider_filters_together(jobs: JobRepository) -> None:
    first = build_job(tenant_id="tenant-a", provider="kie")
    second = build_job(tenant_id="tenant-a", provider="vidgo")
    for job in (first, second):
        jobs.create(job)

    page = jobs.list_for_tenant("tenant-a", status=JobStatus.SUBMITTING, provider="vidgo")

    assert [job.id for job in page.items] == [second.id]


def test_another_tenants_jobs_in_the_status_stay_out(jobs: JobRepository) -> None:
    seed(jobs, [JobStatus.QUEUED] * 3, tenant="tenant-b")
    assert jobs.list_for_tenant("tenant-a", status=JobStatus.QUEUED).items == []


def test_backfill_indexes_items_written_before_the_index(jobs: JobRepository, dynamodb: Any) -> None:
    ids = seed(jobs, [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.QUEUED])
    for job_id in ids:  # as a job stored by the previous release looks
        jobs.client.update_item(
            TableName=TABLE,
            Key=to_attributes({schema.PK: schema.job_pk(job_id), schema.SK: schema.JOB_SK}),
            UpdateExpression="REMOVE #gpk, #gsk",
            ExpressionAttributeNames={"#gpk": schema.GSI2_PK, "#gsk": schema.GSI2_SK},
        )
    before = {job_id: jobs.get(job_id) for job_id in ids}
    assert jobs.list_for_tenant("tenant-a", status=JobStatus.QUEUED).items == []

    assert jobs.backfill_status_index(page_size=2) == 3
    assert jobs.backfill_status_index() == 0  # nothing left to do

    assert [job.id for job in jobs.list_for_tenant("tenant-a", status=JobStatus.QUEUED).items] == [ids[2], ids[0]]
    assert [job.id for job in jobs.list_for_tenant("tenant-a", status=JobStatus.RUNNING).items] == [ids[1]]
    assert {job_id: jobs.get(job_id) for job_id in ids} == before  # same version, same fields


def test_backfill_leaves_alone_a_job_that_changed_since_it_was_read(jobs: JobRepository) -> None:
    (job_id,) = seed(jobs, [JobStatus.QUEUED])
    stale = jobs.get(job_id)
    assert stale is not None
    jobs.transition(stale, JobStatus.RUNNING)
    key = to_attributes({schema.PK: schema.job_pk(job_id), schema.SK: schema.JOB_SK})
    jobs.client.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="REMOVE #gpk",
        ExpressionAttributeNames={"#gpk": schema.GSI2_PK},
    )
    scan_answer = {"Items": [jobs._item(stale)]}  # the scan saw the job before it moved on

    class StaleScan:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def scan(self, **kwargs: Any) -> Any:
            return scan_answer

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    assert JobRepository(TABLE, StaleScan(jobs.client)).backfill_status_index() == 0
    stored = jobs.client.get_item(TableName=TABLE, Key=key)["Item"]
    assert schema.GSI2_PK not in stored
