"""The api function's routes through the real handler: submit, get, list, cancel, providers, OpenAPI, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
import respx
from botocore.credentials import RefreshableCredentials
from openapi_spec_validator import validate

from functions.api import handler
from shared.ids import new_job_id
from shared.models.common import JobStatus, utcnow
from shared.models.job import ErrorCode, JobError, JobRecord, StoredOutput
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import BUCKET, Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, HttpAnswer, answer, api_event

KIE_SUBMIT = "https://api.kie.ai/api/v1/jobs/createTask"
KIE_ACCEPTED = {"code": 200, "msg": "success", "data": {"taskId": "kie-task-1"}}
SOME_JOB = "job_01m7ya4387v8ddd0fnnwa521gc"  # fixed, so parametrized test ids are stable

# Reads publish no metric; Powertools warns about the empty flush.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def call(method: str, path: str, **kwargs: Any) -> HttpAnswer:
    return answer(handler.lambda_handler(api_event(method, path, **kwargs), FakeContext()))


def assert_error(result: HttpAnswer, status: int, code: str) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "details"?}} with the given status and code."""
    assert result.status == status, result.body
    assert set(result.body) == {"error"}
    error: dict[str, Any] = result.body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        mocked.post(KIE_SUBMIT).respond(200, json=KIE_ACCEPTED)
        yield mocked


@pytest.fixture
def rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client()))


def seed(jobs: JobRepository, *, offset_ms: int = 0, **fields: Any) -> JobRecord:
    """Store a job whose id sorts by `offset_ms` (job ids are time-ordered)."""
    base_ms = 1_800_000_000_000
    job = build_job(id=new_job_id(now_ms=base_ms + offset_ms), **fields)
    jobs.create(job)
    return job


def terminal_fields(status: JobStatus) -> dict[str, Any]:
    error = None if status is JobStatus.SUCCEEDED else JobError(code=ErrorCode.GENERATION_FAILED, message="no")
    return {"status": status, "provider_task_id": "t-1", "completed_at": utcnow(), "error": error}


def assert_presigned(url: str, ttl: int, before: datetime, after: datetime) -> None:
    """A signed GET URL valid for `ttl` seconds: SigV4 (X-Amz-Expires) or SigV2 query auth (Expires epoch)."""
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Signature" in query:
        assert query["X-Amz-Expires"] == [str(ttl)]
        return
    assert query["Signature"][0]
    assert int(before.timestamp()) + ttl <= int(query["Expires"][0]) <= int(after.timestamp()) + ttl + 1


def raw_job_item(cloud: Cloud, job_id: str) -> dict[str, Any]:
    item: dict[str, Any] = cloud.clients["dynamodb"].get_item(
        TableName=TABLE, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]
    return item


# -- POST /jobs ----------------------------------------------------------------------------------


def test_submit_answers_202_with_the_job_and_its_location_without_calling_a_provider(
    rt: Runtime, router: respx.MockRouter
) -> None:
    result = call("POST", "/jobs", body={"prompt": "a fox in snow", "provider": "kie", "metadata": {"order": "42"}})

    assert result.status == 202
    job_id = result.body["id"]
    assert result.headers["location"] == f"https://api.example.com/v1/jobs/{job_id}"
    assert "idempotent-replayed" not in result.headers
    assert result.body["status"] == "submitting"  # its workflow hands it to Kie (tests/functions/test_dispatch*)
    assert result.body["provider"] == "kie"
    assert result.body["provider_task_id"] is None
    assert result.body["request"]["prompt"] == "a fox in snow"
    assert result.body["metadata"] == {"order": "42"}
    assert result.body["outputs"] == []
    assert result.body["attempts"] == []
    assert result.body["waiting"] is None
    assert router.routes[0].call_count == 0
    stored = rt.jobs.get(job_id)
    assert stored is not None
    assert stored.tenant_id == "tenant-a"
    assert stored.status is JobStatus.SUBMITTING
    assert call("GET", f"/jobs/{job_id}").body == result.body


def test_location_uses_the_address_the_request_came_in_on_without_a_configured_base(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), public_base_url=""))
    result = call("POST", "/jobs", body={"prompt": "a fox", "provider": "kie"})
    assert result.status == 202
    assert result.headers["location"] == (
        f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/jobs/{result.body['id']}"
    )


# -- GET /jobs/{id} ------------------------------------------------------------------------------


def test_get_returns_the_stored_job(rt: Runtime, jobs: JobRepository) -> None:
    job = seed(jobs, status=JobStatus.RUNNING, provider="vidgo", provider_task_id="v-1", progress=40)
    result = call("GET", f"/jobs/{job.id}")
    assert result.status == 200
    assert result.body["id"] == job.id
    assert result.body["status"] == "running"
    assert result.body["provider"] == "vidgo"
    assert result.body["provider_task_id"] == "v-1"
    assert result.body["progress"] == 40
    assert result.body["error"] is None


def test_get_of_an_unknown_job_is_404(rt: Runtime) -> None:
    assert_error(call("GET", f"/jobs/{new_job_id()}"), 404, "not_found")


def test_get_with_a_malformed_job_id_names_the_field(rt: Runtime) -> None:
    error = assert_error(call("GET", "/jobs/not-a-job-id"), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["path.job_id"]


def test_stored_outputs_get_presigned_urls_when_read_and_none_is_stored(
    rt: Runtime, cloud: Cloud, jobs: JobRepository
) -> None:
    output = StoredOutput(key="outputs/tenant-a/video-0.mp4", bytes=1234, sha256="ab" * 32, content_type="video/mp4")
    job = seed(jobs, outputs=(output,), **terminal_fields(JobStatus.SUCCEEDED))
    before_item = raw_job_item(cloud, job.id)

    before = utcnow()
    result = call("GET", f"/jobs/{job.id}")
    after = utcnow()

    assert result.status == 200
    [view] = result.body["outputs"]
    url = urlsplit(view["url"])
    assert url.scheme == "https"
    assert BUCKET in url.netloc + url.path
    assert url.path.endswith("/outputs/tenant-a/video-0.mp4")
    assert_presigned(view["url"], 3600, before, after)
    expires_at = datetime.fromisoformat(view["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=3600) <= expires_at <= after + timedelta(seconds=3600)
    assert {k: view[k] for k in ("bytes", "sha256", "content_type")} == {
        "bytes": 1234,
        "sha256": "ab" * 32,
        "content_type": "video/mp4",
    }
    # Reading wrote nothing, and the table never holds a presigned URL.
    stored = raw_job_item(cloud, job.id)
    assert stored == before_item
    assert "X-Amz" not in json.dumps(stored)
    assert "https://" not in json.dumps(stored["outputs"])
    listed = call("GET", "/jobs").body["items"]
    assert_presigned(listed[0]["outputs"][0]["url"], 3600, before, utcnow())


def test_presigned_urls_last_no_longer_than_the_signing_credentials_and_say_so(
    rt: Runtime, jobs: JobRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials_end = utcnow() + timedelta(minutes=20)
    metadata = {"access_key": "AKIA", "secret_key": "s", "token": "t", "expiry_time": credentials_end.isoformat()}
    session = boto3.Session(region_name="us-east-1")
    session._session._credentials = RefreshableCredentials.create_from_metadata(
        metadata, refresh_using=lambda: metadata, method="role-session"
    )
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    output = StoredOutput(key="outputs/tenant-a/video-0.mp4", bytes=1, sha256="ab" * 32, content_type="video/mp4")
    job = seed(jobs, outputs=(output,), **terminal_fields(JobStatus.SUCCEEDED))

    [view] = call("GET", f"/jobs/{job.id}").body["outputs"]

    expires_at = datetime.fromisoformat(view["expires_at"].replace("Z", "+00:00"))
    lasts = int(parse_qs(urlsplit(view["url"]).query)["X-Amz-Expires"][0])
    assert expires_at <= credentials_end
    assert 20 * 60 - 5 <= lasts < 3600
    assert abs((expires_at - utcnow()).total_seconds() - lasts) < 5


def test_presigned_urls_are_signed_with_sigv4(rt: Runtime, jobs: JobRepository) -> None:
    output = StoredOutput(key="outputs/tenant-a/video-0.mp4", bytes=1, sha256="ab" * 32, content_type="video/mp4")
    job = seed(jobs, outputs=(output,), **terminal_fields(JobStatus.SUCCEEDED))
    query = parse_qs(urlsplit(call("GET", f"/jobs/{job.id}").body["outputs"][0]["url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


# -- GET /jobs -----------------------------------------------------------------------------------


def walk(path: str, **params: str) -> tuple[list[str], list[int]]:
    """Every page of a listing: the ids in order and the size of each page."""
    ids: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        result = call("GET", path + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert result.status == 200, result.body
        assert set(result.body) == {"items", "next_cursor"}
        ids += [item["id"] for item in result.body["items"]]
        sizes.append(len(result.body["items"]))
        cursor = result.body["next_cursor"]
        if cursor is None:
            return ids, sizes
        assert len(sizes) < 50, "the cursor never ends"


def test_list_walks_every_page_newest_first_without_skip_or_repeat(rt: Runtime, jobs: JobRepository) -> None:
    mine = [seed(jobs, offset_ms=i).id for i in range(7)]
    seed(jobs, offset_ms=100, tenant_id="tenant-b")

    ids, sizes = walk("/jobs", limit="3")

    assert ids == list(reversed(mine))
    assert sizes == [3, 3, 1]


def test_list_default_page_holds_twenty(rt: Runtime, jobs: JobRepository) -> None:
    for i in range(21):
        seed(jobs, offset_ms=i)
    result = call("GET", "/jobs")
    assert len(result.body["items"]) == 20
    assert result.body["next_cursor"] is not None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "queued"}, lambda job: job.status is JobStatus.QUEUED),
        ({"provider": "vidgo"}, lambda job: job.provider == "vidgo"),
        ({"status": "queued", "provider": "kie"}, lambda job: job.status is JobStatus.QUEUED and job.provider == "kie"),
    ],
)
def test_list_filters_by_status_and_provider_across_pages(
    rt: Runtime, jobs: JobRepository, params: dict[str, str], expected: Callable[[JobRecord], bool]
) -> None:
    statuses = [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.SUBMITTING]
    providers = ["kie", "vidgo", "vidgo", "kie", "pixwith"]
    seeded = [
        seed(
            jobs,
            offset_ms=i,
            status=statuses[i % len(statuses)],
            provider=providers[i % len(providers)],
            provider_task_id=None if statuses[i % len(statuses)] is JobStatus.SUBMITTING else f"t-{i}",
        )
        for i in range(13)
    ]
    seed(jobs, offset_ms=200, tenant_id="tenant-b", status=JobStatus.QUEUED, provider_task_id="x")

    ids, _ = walk("/jobs", limit="2", **params)

    wanted = [job.id for job in reversed(seeded) if expected(job)]
    assert wanted
    assert ids == wanted


def test_list_leaves_out_other_tenants_jobs(rt: Runtime, jobs: JobRepository) -> None:
    seed(jobs, tenant_id="tenant-b")
    seed(jobs, tenant_id="tenant-b", status=JobStatus.QUEUED, provider_task_id="t")
    assert call("GET", "/jobs").body == {"items": [], "next_cursor": None}
    assert call("GET", "/jobs?status=queued").body["items"] == []


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJhZnRlciI6ICJub3BlIn0", "e30"])
def test_list_with_a_bad_cursor_is_400(rt: Runtime, cursor: str) -> None:
    error = assert_error(call("GET", f"/jobs?cursor={cursor}"), 400, "bad_request")
    assert error["details"] == {"field": "cursor"}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "2.5"])
def test_list_with_a_bad_limit_is_422_naming_it(rt: Runtime, limit: str) -> None:
    error = assert_error(call("GET", f"/jobs?limit={limit}"), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["query.limit"]


@pytest.mark.parametrize(("name", "value"), [("status", "done"), ("provider", "openai")])
def test_list_with_an_unknown_filter_value_is_422_naming_it(rt: Runtime, name: str, value: str) -> None:
    error = assert_error(call("GET", f"/jobs?{name}={value}"), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == [f"query.{name}"]


# -- POST /jobs/{id}/cancel ----------------------------------------------------------------------


def test_cancel_marks_the_job_canceled_and_stops_its_poller(rt: Runtime, cloud: Cloud) -> None:
    submitted = call("POST", "/jobs", body={"prompt": "a fox", "provider": "kie"})
    job_id = submitted.body["id"]
    assert [e["status"] for e in cloud.executions()] == ["RUNNING"]

    result = call("POST", f"/jobs/{job_id}/cancel")

    assert result.status == 200
    assert result.body["status"] == "canceled"
    assert result.body["error"]["code"] == "canceled"
    stored = rt.jobs.get(job_id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELED
    assert stored.completed_at is not None
    [execution] = cloud.executions()
    assert execution["name"] == job_id
    assert execution["status"] == "ABORTED"


def test_cancel_of_a_job_without_a_running_poller_still_cancels(rt: Runtime, jobs: JobRepository) -> None:
    job = seed(jobs, status=JobStatus.RUNNING, provider_task_id="t-1")
    result = call("POST", f"/jobs/{job.id}/cancel")
    assert result.status == 200
    assert result.body["status"] == "canceled"


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED])
def test_cancel_of_a_finished_job_is_409_and_changes_nothing(
    rt: Runtime, jobs: JobRepository, status: JobStatus
) -> None:
    job = seed(jobs, **terminal_fields(status))
    error = assert_error(call("POST", f"/jobs/{job.id}/cancel"), 409, "job_terminal")
    assert error["details"] == {"status": status.value}
    assert jobs.get(job.id) == job


def test_a_second_cancel_is_409(rt: Runtime, jobs: JobRepository) -> None:
    job = seed(jobs, status=JobStatus.QUEUED, provider_task_id="t-1")
    assert call("POST", f"/jobs/{job.id}/cancel").status == 200
    assert_error(call("POST", f"/jobs/{job.id}/cancel"), 409, "job_terminal")


def test_cancel_of_an_unknown_job_is_404(rt: Runtime) -> None:
    assert_error(call("POST", f"/jobs/{new_job_id()}/cancel"), 404, "not_found")


# -- tenancy and authentication ------------------------------------------------------------------


def test_another_tenants_job_is_404_on_get_and_cancel_and_stays_as_it_was(
    rt: Runtime, cloud: Cloud, jobs: JobRepository
) -> None:
    theirs = seed(jobs, tenant_id="tenant-b", status=JobStatus.QUEUED, provider_task_id="t-1")
    missing = call("GET", f"/jobs/{new_job_id()}")

    got = call("GET", f"/jobs/{theirs.id}")
    canceled = call("POST", f"/jobs/{theirs.id}/cancel")

    # Indistinguishable from a job that does not exist.
    assert_error(missing, 404, "not_found")
    assert got.body == canceled.body == {"error": {"code": "not_found", "message": f"no job {theirs.id}"}}
    assert jobs.get(theirs.id) == theirs
    assert call("GET", f"/jobs/{theirs.id}", tenant="tenant-b").status == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/jobs", {"prompt": "a fox", "provider": "kie"}),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{SOME_JOB}", None),
        ("POST", f"/jobs/{SOME_JOB}/cancel", None),
    ],
)
def test_a_request_without_an_authorizer_tenant_is_401(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, method: str, path: str, body: Any
) -> None:
    assert_error(call(method, path, body=body, tenant=None), 401, "unauthorized")
    assert cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"] == []
    assert cloud.executions() == []
    assert router.calls.call_count == 0


@pytest.mark.parametrize("tenant", ["", "acme corp", "TENANT#x", "t" * 65])
def test_a_tenant_id_jobs_cannot_be_stored_under_is_401_not_a_crash(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, tenant: str
) -> None:
    assert_error(call("GET", "/jobs", tenant=tenant), 401, "unauthorized")
    assert_error(call("POST", "/jobs", body={"prompt": "a fox", "provider": "kie"}, tenant=tenant), 401, "unauthorized")
    assert cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"] == []
    assert router.calls.call_count == 0


@pytest.mark.parametrize("path", ["/providers", "/openapi.json"])
def test_public_documents_need_no_tenant(rt: Runtime, path: str) -> None:
    assert call("GET", path, tenant=None).status == 200


# -- GET /providers ------------------------------------------------------------------------------


def test_providers_lists_each_providers_capabilities_and_routing_position(rt: Runtime) -> None:
    result = call("GET", "/providers")
    assert result.status == 200
    entries = {entry["name"]: entry for entry in result.body["providers"]}
    assert list(entries) == ["vidgo", "kie", "aimlapi", "pixwith", "apimart"]
    assert [entries[name]["routing_position"] for name in entries] == [1, 2, 3, 4, 5]
    assert all(entry["enabled"] for entry in entries.values())
    assert entries["kie"]["capabilities"]["max_prompt_chars"] == 1000
    assert entries["kie"]["capabilities"]["callbacks"] is True
    assert entries["pixwith"]["capabilities"]["max_outputs"] == 4
    assert entries["apimart"]["capabilities"]["last_frame_requires_pro"] is True
    assert entries["aimlapi"]["capabilities"]["qualities"] == ["pro"]


def test_providers_reflect_the_configured_order_and_disabled_providers(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]
) -> None:
    install_runtime(
        cloud.runtime(httpx.Client(), provider_order=("apimart", "kie"), enabled_providers=("kie", "apimart", "vidgo"))
    )
    entries = {entry["name"]: entry for entry in call("GET", "/providers").body["providers"]}
    assert {name: (e["enabled"], e["routing_position"]) for name, e in entries.items()} == {
        "vidgo": (True, 3),
        "kie": (True, 2),
        "aimlapi": (False, None),
        "pixwith": (False, None),
        "apimart": (True, 1),
    }


# -- GET /openapi.json ---------------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_31_with_every_route_and_the_job_schemas(rt: Runtime) -> None:
    result = call("GET", "/openapi.json")
    assert result.status == 200
    document = result.body

    validate(document)

    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/v1"}]
    paths = {path: set(ops) for path, ops in document["paths"].items()}
    assert paths == {
        "/jobs": {"get", "post"},
        "/jobs/{job_id}": {"get"},
        "/jobs/{job_id}/cancel": {"post"},
        "/providers": {"get"},
        "/usage": {"get"},
    }
    schemas = document["components"]["schemas"]
    assert {"JobRequest", "JobView", "ErrorBody", "UsageView"} <= set(schemas)
    assert {"prompt", "provider", "first_frame_url", "last_frame_url", "webhook_url"} <= set(
        schemas["JobRequest"]["properties"]
    )
    submit = document["paths"]["/jobs"]["post"]
    assert "JobRequest" in json.dumps(submit["requestBody"])
    assert "JobView" in json.dumps(submit["responses"]["202"])
    assert "idempotency-key" in [p["name"].lower() for p in submit.get("parameters", [])]
    for status in ("400", "409", "422", "503"):
        assert "ErrorBody" in json.dumps(submit["responses"][status])
    # A provider's refusal is the job's outcome, never the answer to the POST.
    assert "502" not in submit["responses"]
    assert "no_provider_available" in submit["responses"]["202"]["description"]
    assert {"reason", "provider", "next_attempt_at"} <= set(schemas["Waiting"]["properties"])
    assert "waiting" in schemas["JobView"]["properties"]


# -- unknown routes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("DELETE", "/jobs"), ("PUT", f"/jobs/{SOME_JOB}"), ("GET", "/v2/jobs")],
)
def test_an_unknown_route_is_404_in_the_error_shape(rt: Runtime, method: str, path: str) -> None:
    error = assert_error(call(method, path), 404, "not_found")
    assert error["message"] == "no such route"
