"""`GET /jobs?status=...` for one tenant with 10,000 jobs: the `by_status` index against the previous release's
read (the tenant's `by_owner` partition with a status filter), on moto DynamoDB in this process.

The tenant's history is what a busy app builds up: mostly succeeded jobs, some failed, a few in flight. Each
case lists the first page (20 jobs) of one status, newest first, and counts what DynamoDB would bill and wait
for: Query calls (one round trip each) and items read (a filter is applied after the read, so every item a
filtered query passes over is read and paid for). Read units are DynamoDB's for eventually consistent index
reads (0.5 RRU per 4 KB a query reads, rounded up per query), from the seeded items' own size. moto's wall
time is shown too, but moto answers every index query by walking the whole table, so its times say how many
queries were made, not what DynamoDB would take.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.common import Report, table

JOBS = 10_000
QUICK_JOBS = 2_000
PAGE = 20
TENANT = "bench"
# (status, share of the history): what one app's 10,000 jobs look like some months in.
MIX = (("succeeded", 0.985), ("failed", 0.01), ("timed_out", 0.002), ("running", 0.002), ("queued", 0.001))


@dataclass
class Measured:
    queries: int = 0
    items_read: int = 0
    read_units: float = 0.0
    returned: int = 0
    seconds: float = 0.0


class CountingClient:
    def __init__(self, inner: Any, item_kb: float) -> None:
        self.inner = inner
        self.item_kb = item_kb
        self.measured = Measured()

    def query(self, **kwargs: Any) -> Any:
        answer = self.inner.query(**kwargs)
        read = int(answer.get("ScannedCount", 0))
        self.measured.queries += 1
        self.measured.items_read += read
        self.measured.read_units += math.ceil(read * self.item_kb / 4) * 0.5
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def previous_release_page(client: Any, table_name: str, status: str, limit: int) -> int:
    """How the previous release read a status-filtered page: the owner index with a FilterExpression, queried
    again and again until `limit` jobs matched or the tenant's history ran out. The jobs found."""
    from shared.repository import schema

    query: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": schema.GSI1,
        "KeyConditionExpression": "#gpk = :gpk",
        "FilterExpression": "#status = :status",
        "ExpressionAttributeNames": {"#gpk": schema.GSI1_PK, "#status": "status"},
        "ExpressionAttributeValues": {":gpk": {"S": schema.tenant_jobs_pk(TENANT)}, ":status": {"S": status}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    found = 0
    while True:
        answer = client.query(**query)
        found += len(answer.get("Items", []))
        if found >= limit or "LastEvaluatedKey" not in answer:
            return min(found, limit)
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def item_kb(item: dict[str, Any]) -> float:
    """DynamoDB's size of an item, near enough: attribute names plus their values' lengths."""

    def size(value: Any) -> int:
        if isinstance(value, dict):
            return sum(len(key) + size(inner) for key, inner in value.items())
        if isinstance(value, list):
            return sum(size(inner) for inner in value)
        return len(str(value))

    return size(item) / 1024


def seed(client: Any, table_name: str, jobs: int) -> tuple[dict[str, int], float]:
    """`jobs` jobs for the tenant, statuses spread through the history by MIX; the count per status and the
    mean item size in KB."""
    from shared.ids import new_job_id
    from shared.models.common import JobStatus, utcnow
    from shared.models.job import ErrorCode, JobError, JobRecord
    from shared.models.request import JobRequest
    from shared.repository.jobs import JobRepository

    repo = JobRepository(table_name, client)
    request = JobRequest(prompt="a red fox running through snow at dawn, cinematic", metadata={"order": "42"})
    failure = JobError(code=ErrorCode.GENERATION_FAILED, message="the provider failed the job")
    counts: dict[str, int] = {}
    start_ms = int(time.time() * 1000) - jobs * 60_000
    cumulative = [(status, sum(share for _, share in MIX[: i + 1])) for i, (status, _) in enumerate(MIX)]
    items = []
    for n in range(jobs):
        position = ((n * 7919) % jobs) / jobs  # a fixed, well-spread order: no two runs differ
        status = next(s for s, edge in cumulative if position < edge) if position < cumulative[-1][1] else MIX[0][0]
        counts[status] = counts.get(status, 0) + 1
        now = utcnow()
        terminal = JobStatus(status).terminal
        job = JobRecord(
            id=new_job_id(now_ms=start_ms + n * 60_000),
            tenant_id=TENANT,
            status=JobStatus(status),
            version=3,
            provider="kie",
            provider_task_id=f"task-{n}",
            request=request,
            error=failure if status == "failed" else None,
            created_at=now,
            updated_at=now,
            completed_at=now if terminal else None,
            deadline_at=now + timedelta(hours=1),
        )
        items.append({"PutRequest": {"Item": repo._item(job)}})
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table_name: items[start : start + 25]})
    return counts, sum(item_kb(item["PutRequest"]["Item"]) for item in items) / len(items)


def run(quick: bool) -> Report:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    import boto3
    from moto import mock_aws

    from shared.models.common import JobStatus
    from shared.repository import schema
    from shared.repository.jobs import JobRepository

    jobs = QUICK_JOBS if quick else JOBS
    command = f"python -m bench status_list{' --quick' if quick else ''}"
    report = Report(benchmark="status_list", command=command, quick=quick)
    rows = []
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        table_name = "bench-jobs"
        raw.create_table(TableName=table_name, **schema.table_definition())
        started = time.monotonic()
        counts, kb = seed(raw, table_name, jobs)
        print(
            f"  seeded {jobs} jobs ({kb:.2f} KB each) for one tenant in {time.monotonic() - started:.1f} s: {counts}",
            flush=True,
        )
        report.figures["item_kb"] = round(kb, 2)
        for status, _ in MIX:
            before = CountingClient(raw, kb)
            began = time.monotonic()
            before.measured.returned = previous_release_page(before, table_name, status, PAGE)
            before.measured.seconds = time.monotonic() - began

            after = CountingClient(raw, kb)
            repo = JobRepository(table_name, after)
            began = time.monotonic()
            after.measured.returned = len(repo.list_for_tenant(TENANT, status=JobStatus(status), limit=PAGE).items)
            after.measured.seconds = time.monotonic() - began

            assert before.measured.returned == after.measured.returned == min(PAGE, counts.get(status, 0))
            key = f"{status} ({counts.get(status, 0)} jobs)"
            report.figures[status] = {
                "jobs_in_status": counts.get(status, 0),
                "before": vars(before.measured) | {"read_units": before.measured.read_units},
                "after": vars(after.measured) | {"read_units": after.measured.read_units},
            }
            rows.append(
                (
                    key,
                    f"{before.measured.queries} / {after.measured.queries}",
                    f"{before.measured.items_read} / {after.measured.items_read}",
                    f"{before.measured.read_units:g} / {after.measured.read_units:g}",
                    f"{before.measured.seconds:.3f} / {after.measured.seconds:.3f}",
                )
            )
    report.figures["jobs"] = jobs
    print(table(("status (jobs)", "queries before/after", "items read", "read units", "moto seconds"), rows))
    worst = max(
        (figures for name, figures in report.figures.items() if isinstance(figures, dict)),
        key=lambda figures: figures["before"]["items_read"],
    )
    report.check(
        "a status page is one query",
        "1 query per page for every status",
        f"max {max(f['after']['queries'] for f in report.figures.values() if isinstance(f, dict))} "
        f"(previous release: up to {worst['before']['queries']})",
        all(f["after"]["queries"] == 1 for f in report.figures.values() if isinstance(f, dict)),
    )
    report.check(
        "items read per page do not grow with the history",
        f"<= {PAGE} items read per page",
        f"max {max(f['after']['items_read'] for f in report.figures.values() if isinstance(f, dict))} "
        f"(previous release: up to {worst['before']['items_read']})",
        all(f["after"]["items_read"] <= PAGE for f in report.figures.values() if isinstance(f, dict)),
    )
    return report
