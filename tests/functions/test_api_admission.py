"""Admission caps on `POST /jobs`: active jobs and the monthly credit budget, taken with the job and settled
by the stream consumer when it ends. Over a cap: 429, its code and details, and nothing recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler
from functions.notify import handler as notify
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobError, JobRecord
from shared.repository import schema
from shared.repository.keys import TenantLimits
from shared.repository.tenant_usage import month_of
from shared.runtime import Runtime
from shared.services.admission import seconds_to_next_month
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.functions.test_api_submission import SUBMIT, accepted
from tests.support.events import FakeContext, HttpAnswer, answer, api_event, stream_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TENANT = "tenant-capped"
KIE = {"prompt": "a fox in the snow", "provider": "kie"}


def fresh_kie_task(request: httpx.Request) -> httpx.Response:
    """Kie's answer, with a task id of its own: each task is claimed by one job only."""
    body = accepted("kie")
    body["data"]["taskId"] = uuid.uuid4().hex
    return httpx.Response(200, json=body)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        mocked.post(SUBMIT["kie"][0], name="kie").mock(side_effect=fresh_kie_task)
        yield mocked


@pytest.fixture
def rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client()))


def submit(body: Any = None, *, tenant: str = TENANT, key: str | None = None) -> HttpAnswer:
    headers = {"Idempotency-Key": key} if key else None
    event = api_event("POST", "/jobs", body=body or KIE, tenant=tenant, headers=headers)
    return answer(handler.lambda_handler(event, FakeContext(29_000)))


def limit(rt: Runtime, tenant: str = TENANT, **caps: Any) -> None:
    rt.keys.ensure_tenant(tenant)
    rt.keys.set_limits(tenant, TenantLimits(**caps))


def table_items(cloud: Cloud) -> list[dict[str, Any]]:
    return cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"]


def job_entities(cloud: Cloud) -> list[dict[str, Any]]:
    return [i for i in table_items(cloud) if i.get(schema.ENTITY, {}).get("S") in ("job", "idempotency")]


def estimate(rt: Runtime) -> float:
    """The credits one `KIE` job is estimated at (and reserves)."""
    job = rt.jobs.get(submit(tenant="tenant-probe").body["id"])
    assert job is not None
    assert job.reserved_credits
    return job.reserved_credits


def finish(cloud: Cloud, rt: Runtime, job_id: str, target: JobStatus, **changes: Any) -> dict[str, Any]:
    """Move a job to a terminal status and hand the stream record to the notify function."""
    key = {schema.PK: {"S": schema.job_pk(job_id)}, schema.SK: {"S": schema.JOB_SK}}
    before = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    job = rt.jobs.get(job_id)
    assert job is not None
    rt.jobs.transition(job, target, **changes)
    after = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    record = stream_record(after, before)
    notify.lambda_handler({"Records": [record]}, FakeContext())
    return record


def active(rt: Runtime, tenant: str = TENANT) -> int:
    return rt.tenant_usage.active(tenant)


def committed(rt: Runtime, tenant: str = TENANT) -> float:
    return rt.tenant_usage.month(tenant, month_of(datetime.now(UTC))).credits_committed


# -- active jobs -----------------------------------------------------------------------------------


def test_the_job_past_the_active_cap_is_refused_with_429_and_nothing_is_recorded(rt: Runtime, cloud: Cloud) -> None:
    limit(rt, max_active_jobs=2)
    assert [submit().status for _ in range(2)] == [202, 202]
    before = job_entities(cloud)

    refused = submit(key="retry-me")

    assert refused.status == 429
    assert refused.error_code == "too_many_active_jobs"
    assert refused.body["error"]["details"] == {"limit": "max_active_jobs", "max_active_jobs": 2, "active_jobs": 2}
    assert int(refused.headers["retry-after"]) > 0
    assert job_entities(cloud) == before  # no job, no idempotency claim
    assert active(rt) == 2


def test_a_tenant_with_no_active_slots_is_refused_before_anything_is_written(rt: Runtime, cloud: Cloud) -> None:
    limit(rt, max_active_jobs=0)

    refused = submit()

    assert (refused.status, refused.error_code) == (429, "too_many_active_jobs")
    assert job_entities(cloud) == []


def test_a_finished_job_gives_its_slot_back_once_however_often_its_record_is_delivered(
    rt: Runtime, cloud: Cloud
) -> None:
    limit(rt, max_active_jobs=1)
    first = submit()
    assert submit().status == 429

    record = finish(
        cloud, rt, first.body["id"], JobStatus.CANCELED, error=JobError(code=ErrorCode.CANCELED, message="x")
    )
    notify.lambda_handler({"Records": [record]}, FakeContext())  # the stream delivers it again

    assert active(rt) == 0
    assert submit().status == 202
    assert active(rt) == 1


def test_a_replayed_request_gets_its_job_even_when_the_tenant_is_at_its_cap(rt: Runtime) -> None:
    limit(rt, max_active_jobs=1)
    first = submit(key="order-1")

    again = submit(key="order-1")

    assert again.status == 202
    assert again.body["id"] == first.body["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert active(rt) == 1


def test_a_tenant_without_caps_is_unlimited_and_its_active_jobs_are_counted(rt: Runtime) -> None:
    assert [submit(tenant="tenant-free").status for _ in range(5)] == [202] * 5
    assert active(rt, "tenant-free") == 5


# -- monthly credits -------------------------------------------------------------------------------


def test_the_job_past_the_monthly_budget_is_refused_with_429_until_next_month(rt: Runtime, cloud: Cloud) -> None:
    credits = estimate(rt)
    limit(rt, monthly_credits=credits * 2.5)
    assert [submit().status for _ in range(2)] == [202, 202]
    before = job_entities(cloud)

    refused = submit()

    assert refused.status == 429
    assert refused.error_code == "budget_exceeded"
    details = refused.body["error"]["details"]
    assert details["limit"] == "monthly_credits"
    assert details["monthly_credits"] == pytest.approx(credits * 2.5)
    assert details["credits_committed"] == pytest.approx(credits * 2)
    assert details["job_credits"] == pytest.approx(credits)
    assert details["month"] == month_of(datetime.now(UTC))
    retry_after = int(refused.headers["retry-after"])
    assert abs(retry_after - seconds_to_next_month(datetime.now(UTC))) <= 5
    assert job_entities(cloud) == before
    assert committed(rt) == pytest.approx(credits * 2)


def test_a_job_costlier_than_the_whole_budget_is_refused_before_anything_is_written(rt: Runtime, cloud: Cloud) -> None:
    credits = estimate(rt)
    limit(rt, monthly_credits=credits / 2)
    before = job_entities(cloud)

    refused = submit()

    assert (refused.status, refused.error_code) == (429, "budget_exceeded")
    assert job_entities(cloud) == before


def test_a_finished_job_is_settled_to_the_providers_figure(rt: Runtime, cloud: Cloud) -> None:
    credits = estimate(rt)
    limit(rt, monthly_credits=credits * 10)
    job_id = submit().body["id"]
    job = rt.jobs.get(job_id)
    assert job is not None
    assert job.provider_task_id is not None
    reported = job.cost.model_copy(update={"amount": credits / 4, "estimated": False}) if job.cost else None

    record = finish(
        cloud,
        rt,
        job_id,
        JobStatus.FAILED,
        cost=reported,
        error=JobError(code=ErrorCode.GENERATION_FAILED, message="x"),
    )
    notify.lambda_handler({"Records": [record]}, FakeContext())

    month = rt.tenant_usage.month(TENANT, month_of(datetime.now(UTC)))
    assert month.credits_committed == pytest.approx(credits / 4)
    assert month.by_provider == {"kie": pytest.approx(credits / 4)}
    assert active(rt) == 0


def test_a_job_no_provider_took_releases_its_whole_reservation(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter
) -> None:
    credits = estimate(rt)
    limit(rt, monthly_credits=credits, max_active_jobs=1)
    router.routes["kie"].mock(side_effect=None, return_value=httpx.Response(400, json={"code": 400, "msg": "refused"}))

    failed = submit()
    assert failed.status >= 400
    [job] = rt.jobs.list_for_tenant(TENANT).items
    assert job.status is JobStatus.FAILED
    assert job.provider_task_id is None
    key = {schema.PK: {"S": schema.job_pk(job.id)}, schema.SK: {"S": schema.JOB_SK}}
    item = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    notify.lambda_handler({"Records": [stream_record(item, None)]}, FakeContext())

    assert committed(rt) == 0
    assert active(rt) == 0
    router.routes["kie"].mock(side_effect=fresh_kie_task)
    assert submit().status == 202


def test_a_job_from_before_budgets_is_never_settled(rt: Runtime, cloud: Cloud) -> None:
    from tests.fixtures.jobs import build_job

    job: JobRecord = rt.jobs.create(build_job(tenant_id=TENANT, status=JobStatus.QUEUED, provider_task_id="t")).job
    assert job.reserved_credits is None
    rt.keys.ensure_tenant(TENANT)
    finish(cloud, rt, job.id, JobStatus.CANCELED, error=JobError(code=ErrorCode.CANCELED, message="x"))

    assert active(rt) == 0
    assert rt.tenant_usage.month(TENANT, month_of(job.created_at)).jobs == 0
