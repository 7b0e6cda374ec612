"""The callback function with genuine provider callbacks: the body is a hint, the re-read status decides.

Covers Vidgo and Kie (signed and unsigned) successes, failures, out-of-order and late callbacks,
duplicates, a provider that cannot be asked, and a callback that overtakes the submit answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from functions.api import handler as api_handler
from functions.callback import handler
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobRecord
from shared.providers.kie_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_kie_callback
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import PROVIDER_KEYS, Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, HttpAnswer, answer, api_event
from tests.support.workflow import then_dispatched

PROVIDERS = Path(__file__).resolve().parent.parent / "events" / "providers"
KIE_TASK = "281e5b0a4c7d4f1e9b3a6c2d8e0f39b9"
VIDGO_TASK = "task-unified-1757165031-uyujaw3d"
KIE_STATUS = "https://api.kie.ai/api/v1/jobs/recordInfo"
VIDGO_STATUS = f"https://api.vidgo.ai/api/generate/status/{VIDGO_TASK}"
HMAC_KEY = "kie-webhook-hmac-key-for-tests"
# What the provider's status API says the result is; callback bodies name other URLs.
REREAD_URL = "https://cdn.example.com/results/reread.mp4"
BODY_URL = "https://hooks.example.com/planted.mp4"

Runtimes = Callable[..., Runtime]


def provider_json(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROVIDERS / provider / f"{name}.json").read_text())
    return loaded


def kie_record(state: str, *, urls: tuple[str, ...] = (REREAD_URL,), fail_msg: str | None = None) -> dict[str, Any]:
    """A Kie recordInfo answer (also the shape of a Kie callback body)."""
    document = provider_json("kie", "record_success")
    data = document["data"]
    data["state"] = state
    data["resultJson"] = json.dumps({"resultUrls": list(urls)}) if state == "success" else ""
    data["failCode"] = "500" if state == "fail" else None
    data["failMsg"] = fail_msg
    return document


def vidgo_task(status: str, *, url: str = REREAD_URL, error: str | None = None) -> dict[str, Any]:
    """A Vidgo status answer (also the shape of a Vidgo callback body)."""
    document = provider_json("vidgo", "status_finished")
    data = document["data"]
    data["status"] = status
    data["files"] = [{"file_url": url, "file_type": "video"}] if status == "finished" else []
    data["error_message"] = error
    return document


def tracked_job(jobs: JobRepository, provider: str, status: JobStatus, task_id: str | None) -> JobRecord:
    """A stored job in `status`, reached through the transitions a real job takes."""
    job = build_job(provider=provider)
    jobs.create(job)
    if status is JobStatus.SUBMITTING:
        return job
    job = jobs.transition(job, JobStatus.QUEUED, provider_task_id=task_id)
    path = {
        JobStatus.QUEUED: (),
        JobStatus.RUNNING: (JobStatus.RUNNING,),
        JobStatus.ARCHIVING: (JobStatus.ARCHIVING,),
        JobStatus.SUCCEEDED: (JobStatus.ARCHIVING, JobStatus.SUCCEEDED),
        JobStatus.FAILED: (JobStatus.FAILED,),
        JobStatus.CANCELED: (JobStatus.CANCELED,),
        JobStatus.TIMED_OUT: (JobStatus.TIMED_OUT,),
    }[status]
    for step in path:
        extra = {"result_urls": ("https://cdn.example.com/old.mp4",)} if step is JobStatus.ARCHIVING else {}
        job = jobs.transition(job, step, **extra)
    return job


def stored_item(cloud: Cloud, job_id: str) -> dict[str, Any]:
    key = to_attributes({schema.PK: schema.job_pk(job_id), schema.SK: schema.JOB_SK})
    item: dict[str, Any] = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    return item


def token_for(rt: Runtime, job: JobRecord) -> str:
    """The token in the callback URL handed to the job's provider."""
    return rt.signing_keys().callback_token(job.id, job.provider)


def post_callback(
    provider: str, job_id: str, token: str | None, body: Any, headers: dict[str, str] | None = None
) -> HttpAnswer:
    query = f"?token={token}" if token is not None else ""
    raw = body if isinstance(body, str) else json.dumps(body)
    event = api_event("POST", f"/callbacks/{provider}/{job_id}{query}", raw_body=raw, headers=headers, tenant=None)
    return answer(handler.lambda_handler(event, FakeContext()))


def kie_signature(task_id: str, timestamp: int, key: str = HMAC_KEY) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign_kie_callback(key, task_id, timestamp)}


@pytest.fixture
def runtime(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Runtimes:
    """Install a runtime whose provider calls go through respx; `hmac=True` configures Kie signing."""

    def build(*, hmac: bool = False, **settings: Any) -> Runtime:
        if hmac:
            cloud.set_provider_keys({**PROVIDER_KEYS, "kie_webhook_hmac_key": HMAC_KEY})
        return install_runtime(cloud.runtime(httpx.Client(), **settings))

    return build


@pytest.fixture
def router() -> Any:
    with respx.mock(assert_all_called=False) as mocked:
        yield mocked


# -- successes: the re-read status decides, never the body ------------------------------------------


def test_vidgo_success_callback_archives_the_reread_result(runtime: Runtimes, router: Any) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", JobStatus.RUNNING, VIDGO_TASK)
    status = router.get(VIDGO_STATUS).respond(200, json=vidgo_task("finished"))

    result = post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("finished", url=BODY_URL))

    assert (result.status, result.body) == (200, {"result": "applied", "status": "archiving"})
    assert status.call_count == 1
    assert status.calls.last.request.headers["Authorization"] == f"Bearer {PROVIDER_KEYS['vidgo']}"
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.version) == (JobStatus.ARCHIVING, job.version + 1)
    assert stored.result_urls == (REREAD_URL,)
    assert stored.progress == 100


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned-no-key-configured"])
def test_kie_success_callback_archives_the_reread_result(runtime: Runtimes, router: Any, signed: bool) -> None:
    rt = runtime(hmac=signed)
    job = tracked_job(rt.jobs, "kie", JobStatus.QUEUED, KIE_TASK)
    status = router.get(KIE_STATUS, params={"taskId": KIE_TASK}).respond(200, json=kie_record("success"))
    headers = kie_signature(KIE_TASK, int(rt.clock().timestamp())) if signed else {}

    result = post_callback("kie", job.id, token_for(rt, job), kie_record("success", urls=(BODY_URL,)), headers)

    assert (result.status, result.body) == (200, {"result": "applied", "status": "archiving"})
    assert status.call_count == 1
    assert status.calls.last.request.headers["Authorization"] == f"Bearer {PROVIDER_KEYS['kie']}"
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.result_urls) == (JobStatus.ARCHIVING, job.version + 1, (REREAD_URL,))


def test_kie_callback_with_the_snake_case_task_id_is_verified_and_applied(runtime: Runtimes, router: Any) -> None:
    rt = runtime(hmac=True)
    job = tracked_job(rt.jobs, "kie", JobStatus.QUEUED, KIE_TASK)
    router.get(KIE_STATUS).respond(200, json=kie_record("success"))
    body = provider_json("kie", "callback_snake_task_id")

    result = post_callback(
        "kie",
        job.id,
        token_for(rt, job),
        body,
        kie_signature(KIE_TASK, int(rt.clock().timestamp())),
    )

    assert (result.status, result.body["status"]) == (200, "archiving")


# -- failures and out-of-order reports -------------------------------------------------------------------


def test_failure_callback_fails_the_job_with_the_providers_message(runtime: Runtimes, router: Any) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", JobStatus.RUNNING, VIDGO_TASK)
    router.get(VIDGO_STATUS).respond(200, json=vidgo_task("failed", error="Content policy violation"))

    result = post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("failed", error="something else"))

    assert (result.status, result.body) == (200, {"result": "applied", "status": "failed"})
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert (stored.error.code, stored.error.message) == (ErrorCode.GENERATION_FAILED, "Content policy violation")
    assert stored.completed_at is not None


def test_kie_failure_callback_keeps_kies_fail_message(runtime: Runtimes, router: Any) -> None:
    rt = runtime(hmac=True)
    job = tracked_job(rt.jobs, "kie", JobStatus.RUNNING, KIE_TASK)
    router.get(KIE_STATUS).respond(200, json=kie_record("fail", fail_msg="Internal error, please try again later."))

    result = post_callback(
        "kie",
        job.id,
        token_for(rt, job),
        provider_json("kie", "callback_fail"),
        kie_signature(KIE_TASK, int(rt.clock().timestamp())),
    )

    assert result.body["status"] == "failed"
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert stored.error is not None
    assert stored.error.code is ErrorCode.GENERATION_FAILED
    assert stored.error.message == "Internal error, please try again later."
    assert stored.error.provider_code == "500"


def test_body_saying_failed_while_the_provider_says_success_archives(runtime: Runtimes, router: Any) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", JobStatus.RUNNING, VIDGO_TASK)
    router.get(VIDGO_STATUS).respond(200, json=vidgo_task("finished"))

    result = post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("failed", error="x"))

    assert result.body == {"result": "applied", "status": "archiving"}
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.error, stored.result_urls) == (JobStatus.ARCHIVING, None, (REREAD_URL,))


def test_body_saying_success_while_the_provider_still_runs_only_records_progress(
    runtime: Runtimes, router: Any
) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", JobStatus.QUEUED, VIDGO_TASK)
    router.get(VIDGO_STATUS).respond(200, json=provider_json("vidgo", "status_running"))

    result = post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("finished"))

    assert result.body == {"result": "applied", "status": "running"}
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.progress, stored.result_urls) == (JobStatus.RUNNING, 45, ())


@pytest.mark.parametrize(
    "finished", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT, JobStatus.ARCHIVING]
)
def test_late_callback_after_the_job_moved_on_is_ignored(
    runtime: Runtimes, router: Any, cloud: Cloud, finished: JobStatus
) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", finished, VIDGO_TASK)
    status = router.get(VIDGO_STATUS).respond(200, json=vidgo_task("finished"))
    before = stored_item(cloud, job.id)

    result = post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("finished"))

    assert (result.status, result.body) == (200, {"result": "ignored", "status": finished.value})
    assert status.call_count == 0
    assert stored_item(cloud, job.id) == before


def test_five_duplicate_callbacks_make_one_transition(runtime: Runtimes, router: Any) -> None:
    rt = runtime(hmac=True)
    job = tracked_job(rt.jobs, "kie", JobStatus.RUNNING, KIE_TASK)
    status = router.get(KIE_STATUS).respond(200, json=kie_record("success"))
    token = token_for(rt, job)
    headers = kie_signature(KIE_TASK, int(rt.clock().timestamp()))

    results = [post_callback("kie", job.id, token, kie_record("success"), headers) for _ in range(5)]

    assert [r.body["result"] for r in results] == ["applied"] + ["ignored"] * 4
    assert {r.status for r in results} == {200}
    assert status.call_count == 1
    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.version) == (JobStatus.ARCHIVING, job.version + 1)


def test_duplicate_progress_callbacks_write_once(runtime: Runtimes, router: Any) -> None:
    rt = runtime()
    job = tracked_job(rt.jobs, "vidgo", JobStatus.QUEUED, VIDGO_TASK)
    router.get(VIDGO_STATUS).respond(200, json=provider_json("vidgo", "status_running"))
    token = token_for(rt, job)

    for _ in range(5):
        result = post_callback("vidgo", job.id, token, vidgo_task("running"))
        assert result.body == {"result": "applied", "status": "running"}

    stored = rt.jobs.get(job.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.progress) == (JobStatus.RUNNING, job.version + 1, 45)


# -- the provider cannot be asked -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.Response(500, json={"code": 500, "msg": "internal error"}),
        httpx.Response(503, text="unavailable"),
        httpx.Response(429, json={"code": 429, "msg": "rate limited"}),
        httpx.Response(200, text="<html>maintenance</html>"),
    ],
    ids=["timeout", "connect-error", "500", "503", "429", "non-json"],
)
def test_status_reread_failing_defers_and_changes_nothing(
    runtime: Runtimes, router: Any, cloud: Cloud, failure: Exception | httpx.Response
) -> None:
    rt = runtime(hmac=True)
    job = tracked_job(rt.jobs, "kie", JobStatus.RUNNING, KIE_TASK)
    route = router.get(KIE_STATUS)
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    before = stored_item(cloud, job.id)

    result = post_callback(
        "kie",
        job.id,
        token_for(rt, job),
        kie_record("success"),
        kie_signature(KIE_TASK, int(rt.clock().timestamp())),
    )

    assert (result.status, result.body) == (202, {"result": "deferred", "status": "running"})
    assert route.call_count == 1
    assert stored_item(cloud, job.id) == before


def test_status_reread_uses_the_short_callback_timeout(runtime: Runtimes, router: Any) -> None:
    rt = runtime(callback_recheck_timeout=2.5)
    job = tracked_job(rt.jobs, "vidgo", JobStatus.RUNNING, VIDGO_TASK)
    route = router.get(VIDGO_STATUS).respond(200, json=vidgo_task("finished"))

    post_callback("vidgo", job.id, token_for(rt, job), vidgo_task("finished"))

    assert route.calls.last.request.extensions["timeout"]["read"] == 2.5


# -- a callback that overtakes the submit answer ---------------------------------------------------------


def test_callback_for_a_submitting_job_adopts_the_task_and_the_submitters_write_loses(
    runtime: Runtimes, router: Any
) -> None:
    rt = runtime()
    submitting = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    status = router.get(VIDGO_STATUS).respond(200, json=provider_json("vidgo", "status_running"))

    result = post_callback("vidgo", submitting.id, token_for(rt, submitting), vidgo_task("running"))

    assert result.body == {"result": "applied", "status": "running"}
    assert status.call_count == 1
    moved = rt.jobs.get(submitting.id)
    assert moved is not None
    assert (moved.status, moved.provider_task_id, moved.version) == (JobStatus.RUNNING, VIDGO_TASK, 1)
    # The submitter still holds the job as it read it; its conditional `queued` write must lose.
    with pytest.raises(Exception, match="changed since version 0"):
        rt.jobs.transition(submitting, JobStatus.QUEUED, provider_task_id=VIDGO_TASK)
    assert rt.jobs.get(submitting.id) == moved


def test_callback_for_a_submitting_job_with_an_unknown_provider_status_still_queues_it(
    runtime: Runtimes, router: Any
) -> None:
    rt = runtime()
    submitting = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    router.get(VIDGO_STATUS).respond(200, json=vidgo_task("moderating"))

    result = post_callback("vidgo", submitting.id, token_for(rt, submitting), vidgo_task("moderating"))

    # The provider confirmed, with our key, that it holds the task: the job is no longer "submitting",
    # so a poller that finds it later tracks it instead of failing it as interrupted.
    assert result.body == {"result": "applied", "status": "queued"}
    moved = rt.jobs.get(submitting.id)
    assert moved is not None
    assert (moved.status, moved.provider_task_id) == (JobStatus.QUEUED, VIDGO_TASK)


def test_callback_overtaking_the_submit_answer_through_the_api(runtime: Runtimes, router: Any, cloud: Cloud) -> None:
    """Kie calls back (success) before its createTask answer reaches the dispatching function."""
    rt = runtime(hmac=True)
    callbacks: list[HttpAnswer] = []

    def create_task(request: httpx.Request) -> httpx.Response:
        callback_url = urlsplit(json.loads(request.content)["callBackUrl"])
        job_id = callback_url.path.rsplit("/", 1)[-1]
        token = parse_qs(callback_url.query)["token"][0]
        headers = kie_signature(KIE_TASK, int(rt.clock().timestamp()))
        callbacks.append(post_callback("kie", job_id, token, kie_record("success", urls=(BODY_URL,)), headers))
        return httpx.Response(200, json=provider_json("kie", "submit_ok"))

    router.post("https://api.kie.ai/api/v1/jobs/createTask").mock(side_effect=create_task)
    router.get(KIE_STATUS).respond(200, json=kie_record("success"))

    submitted = then_dispatched(
        answer(
            api_handler.lambda_handler(
                api_event("POST", "/jobs", body={"prompt": "a fox", "provider": "kie"}), FakeContext()
            )
        )
    )

    assert submitted.status == 202
    assert [c.body for c in callbacks] == [{"result": "applied", "status": "archiving"}]
    job = rt.jobs.get(submitted.body["id"])
    assert job is not None
    assert (job.status, job.provider_task_id, job.result_urls) == (JobStatus.ARCHIVING, KIE_TASK, (REREAD_URL,))
    # The dispatcher recorded its accepted attempt but did not move the job back to `queued`.
    assert [a.outcome.value for a in job.attempts] == ["accepted"]
    assert job.version == 3  # created, handed off, called back, answer recorded
    assert job.handoff_at is None
    assert submitted.body["status"] == "archiving"


# -- one provider task, one job -----------------------------------------------------------------------


def test_callback_attaching_a_task_another_job_holds_to_a_submitting_job_is_refused(
    runtime: Runtimes, router: Any, cloud: Cloud
) -> None:
    """The finding: a job still `submitting` adopted, through a callback with its own valid token, a
    task another job holds, and so that job's result. Refused before the provider is asked."""
    rt = runtime()
    holder = tracked_job(rt.jobs, "vidgo", JobStatus.RUNNING, VIDGO_TASK)
    submitting = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    before = stored_item(cloud, submitting.id)
    status = router.get(VIDGO_STATUS).respond(200, json=vidgo_task("finished"))

    result = post_callback("vidgo", submitting.id, token_for(rt, submitting), vidgo_task("finished"))

    assert (result.status, result.body["error"]["details"]) == (401, {"reason": "task_claimed"})
    assert status.call_count == 0
    assert stored_item(cloud, submitting.id) == before
    assert rt.jobs.get(holder.id) == holder
    assert rt.jobs.task_holder("vidgo", VIDGO_TASK) == holder.id


def test_callback_losing_the_task_to_another_job_while_it_rereads_changes_nothing(
    runtime: Runtimes, router: Any, cloud: Cloud
) -> None:
    """The race: another job records the task between the callback's check and its write."""
    rt = runtime()
    submitting = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    rival = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    before = stored_item(cloud, submitting.id)

    def rival_records_the_task_first(request: httpx.Request) -> httpx.Response:
        rt.jobs.transition(rival, JobStatus.QUEUED, provider_task_id=VIDGO_TASK)
        return httpx.Response(200, json=vidgo_task("finished"))

    router.get(VIDGO_STATUS).mock(side_effect=rival_records_the_task_first)

    result = post_callback("vidgo", submitting.id, token_for(rt, submitting), vidgo_task("finished"))

    assert (result.status, result.body["error"]["details"]) == (401, {"reason": "task_claimed"})
    assert stored_item(cloud, submitting.id) == before
    assert rt.jobs.task_holder("vidgo", VIDGO_TASK) == rival.id


def test_a_submitting_jobs_callback_claims_the_task_so_no_other_job_can(
    runtime: Runtimes, router: Any, cloud: Cloud
) -> None:
    rt = runtime()
    first = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    second = tracked_job(rt.jobs, "vidgo", JobStatus.SUBMITTING, None)
    router.get(VIDGO_STATUS).respond(200, json=provider_json("vidgo", "status_running"))

    adopted = post_callback("vidgo", first.id, token_for(rt, first), vidgo_task("running"))
    before = stored_item(cloud, second.id)
    refused = post_callback("vidgo", second.id, token_for(rt, second), vidgo_task("running"))

    assert adopted.body == {"result": "applied", "status": "running"}
    assert (refused.status, refused.body["error"]["details"]) == (401, {"reason": "task_claimed"})
    assert stored_item(cloud, second.id) == before
    assert rt.jobs.task_holder("vidgo", VIDGO_TASK) == first.id
