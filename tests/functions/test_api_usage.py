"""`GET /usage`: the caller's tier and caps, active jobs, credits this month by provider, requests used."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
import respx
from botocore.stub import Stubber

from functions.api import handler
from functions.notify import handler as notify
from shared.models.common import JobStatus
from shared.models.job import Cost
from shared.models.tiers import Tier
from shared.repository import schema
from shared.repository.keys import TenantLimits
from shared.repository.tenant_usage import month_of
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.functions.test_api_submission import SUBMIT, accepted
from tests.support.events import FakeContext, HttpAnswer, answer, api_event, stream_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TENANT = "tenant-usage"
TIERS = {
    "standard": Tier(rate_limit=10, burst_limit=20, monthly_requests=1000),
    "gold": Tier(rate_limit=40, burst_limit=80, monthly_requests=None),
}


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
def apigateway(cloud: Cloud) -> Iterator[Stubber]:
    client = boto3.client("apigateway")
    cloud.clients["apigateway"] = client
    with Stubber(client) as stubber:
        yield stubber
    del cloud.clients["apigateway"]


@pytest.fixture
def rt(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter, apigateway: Stubber
) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client(), tenant_tiers=TIERS, default_tier="standard"))


def usage(tenant: str | None = TENANT) -> HttpAnswer:
    return answer(handler.lambda_handler(api_event("GET", "/usage", tenant=tenant), FakeContext()))


def submit(body: dict[str, Any]) -> str:
    result = answer(handler.lambda_handler(api_event("POST", "/jobs", body=body, tenant=TENANT), FakeContext(29_000)))
    assert result.status == 202, result.body
    job_id: str = result.body["id"]
    return job_id


def test_a_tenant_with_nothing_set_gets_the_default_tier_and_no_caps(rt: Runtime) -> None:
    result = usage("tenant-new")

    assert result.status == 200
    assert result.body == {
        "tenant_id": "tenant-new",
        "month": month_of(datetime.now(UTC)),
        "limits": {
            "tier": "standard",
            "rate_limit": 10.0,
            "burst_limit": 20,
            "monthly_requests": 1000,
            "max_active_jobs": None,
            "monthly_credits": None,
        },
        "active_jobs": 0,
        "jobs_this_month": 0,
        "credits": {"committed": 0.0, "remaining": None, "by_provider": {}},
        "requests": {"used": None, "remaining": None},
    }


def test_usage_counts_active_jobs_and_credits_by_provider_and_reads_requests_from_the_usage_plan(
    rt: Runtime, cloud: Cloud, apigateway: Stubber
) -> None:
    rt.keys.ensure_tenant(TENANT)
    rt.keys.set_limits(TENANT, TenantLimits(tier="standard", max_active_jobs=5, monthly_credits=1000))
    rt.keys.set_usage_key(TENANT, "key-123", "value-not-shown", "plan-std")
    finished, running = submit({"prompt": "a fox", "provider": "kie"}), submit({"prompt": "a fox", "provider": "kie"})
    reserved = rt.jobs.get(running)
    assert reserved is not None
    assert reserved.reserved_credits
    job = rt.jobs.get(finished)
    assert job is not None
    key = {schema.PK: {"S": schema.job_pk(finished)}, schema.SK: {"S": schema.JOB_SK}}
    before = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    rt.jobs.transition(job, JobStatus.RUNNING)
    job = rt.jobs.get(finished)
    assert job is not None
    rt.jobs.transition(
        job,
        JobStatus.ARCHIVING,
        result_urls=("https://cdn.example.com/x.mp4",),
        cost=Cost(amount=7, estimated=False, basis="reported"),
    )
    job = rt.jobs.get(finished)
    assert job is not None
    rt.jobs.transition(job, JobStatus.SUCCEEDED)
    after = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    notify.lambda_handler({"Records": [stream_record(after, before)]}, FakeContext())
    today = datetime.now(UTC).date()
    apigateway.add_response(
        "get_usage",
        {
            "usagePlanId": "plan-std",
            "startDate": today.replace(day=1).isoformat(),
            "endDate": today.isoformat(),
            "items": {"key-123": [[3, 997], [4, 993]]},
        },
        {
            "usagePlanId": "plan-std",
            "keyId": "key-123",
            "startDate": today.replace(day=1).isoformat(),
            "endDate": today.isoformat(),
        },
    )

    result = usage()

    assert result.status == 200
    body = result.body
    assert body["limits"]["max_active_jobs"] == 5
    assert body["limits"]["monthly_credits"] == 1000
    assert body["active_jobs"] == 1
    assert body["jobs_this_month"] == 2
    assert body["credits"]["by_provider"] == {"kie": 7}
    assert body["credits"]["committed"] == pytest.approx(7 + reserved.reserved_credits)
    assert body["credits"]["remaining"] == pytest.approx(1000 - 7 - reserved.reserved_credits)
    assert body["requests"] == {"used": 7, "remaining": 993}
    apigateway.assert_no_pending_responses()


def test_a_usage_plan_that_cannot_be_read_leaves_the_request_count_unknown(rt: Runtime, apigateway: Stubber) -> None:
    rt.keys.ensure_tenant(TENANT)
    rt.keys.set_limits(TENANT, TenantLimits(tier="gold"))
    rt.keys.set_usage_key(TENANT, "key-9", "v", "plan-gold")
    apigateway.add_client_error("get_usage", service_error_code="TooManyRequestsException", http_status_code=429)

    result = usage()

    assert result.status == 200
    assert result.body["limits"]["tier"] == "gold"
    assert result.body["limits"]["monthly_requests"] is None
    assert result.body["requests"] == {"used": None, "remaining": None}


def test_usage_needs_a_tenant(rt: Runtime) -> None:
    result = usage(None)
    assert result.status == 401
    assert result.error_code == "unauthorized"
