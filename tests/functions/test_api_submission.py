"""`POST /jobs` then the workflow's Dispatch task handing the job to providers: recording order, callback URLs,
cost, failover and failures (which arrive on the job, never as the answer to the POST)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from botocore.exceptions import ClientError

from functions.api import handler
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobRecord
from shared.pacing.limits import ProviderLimit
from shared.pacing.pacer import SPACING_GUARD_SECONDS
from shared.runtime import Runtime
from shared.signing import SigningKeys
from tests.fixtures.cloud import SIGNING_SECRET, Cloud
from tests.support.events import FakeContext, HttpAnswer, answer, api_event
from tests.support.workflow import Round, dispatch_round, run_dispatch

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

PROVIDER_ANSWERS = Path(__file__).resolve().parent.parent / "events" / "providers"
SUBMIT: dict[str, tuple[str, str]] = {
    "vidgo": ("https://api.vidgo.ai/api/generate/submit", "vidgo/submit_ok.json"),
    "kie": ("https://api.kie.ai/api/v1/jobs/createTask", "kie/submit_ok.json"),
    "aimlapi": ("https://api.aimlapi.com/v2/video/generations", "aimlapi/submit_accepted.json"),
    "pixwith": ("https://api.pixwith.ai/api/task/create", "pixwith/submit_accepted.json"),
    "apimart": ("https://api.apimart.ai/v1/videos/generations", "apimart/submit_accepted.json"),
}
TASK_IDS = {
    "vidgo": "task-unified-1757165031-uyujaw3d",
    "kie": "281e5b0a4c7d4f1e9b3a6c2d8e0f39b9",
    "aimlapi": "bfb9eca8-178f-41ca-a1f1-6e4551157a0b:klingai/video-v2-6-pro-text-to-video",
    "pixwith": "d425ab4dc256f0ebaa84862b9cea8a3d",
    "apimart": "task_01K8SGYNNNVBQTXNR4MM964S7K",
}
# A request every provider can take, with the field values each needs.
FOR_PROVIDER: dict[str, dict[str, Any]] = {
    "vidgo": {},
    "kie": {},
    "aimlapi": {"quality": "pro"},
    "pixwith": {},
    "apimart": {"quality": "std"},
}


def accepted(name: str) -> Any:
    return json.loads((PROVIDER_ANSWERS / SUBMIT[name][1]).read_text())


def fresh_kie_task(request: httpx.Request) -> httpx.Response:
    """Kie's answer, with a task id of its own: each task is claimed by one job only."""
    body = accepted("kie")
    body["data"]["taskId"] = uuid.uuid4().hex
    return httpx.Response(200, json=body)


def post(body: Any, *, tenant: str = "tenant-a") -> HttpAnswer:
    event = api_event("POST", "/jobs", body=body, tenant=tenant)
    return answer(handler.lambda_handler(event, FakeContext()))


@dataclass
class Submitted:
    status: int  # the POST's
    posted: Any  # the POST's body: the job as admitted
    body: Any  # the job as read after the first Dispatch round
    round: Round | None


def call(body: Any, *, tenant: str = "tenant-a", remaining_ms: int = 150_000) -> Submitted:
    """POST the job, then run its workflow's first Dispatch round, then read the job back."""
    posted = post(body, tenant=tenant)
    if posted.status != 202:
        return Submitted(posted.status, posted.body, posted.body, None)
    from shared.runtime import get_runtime

    done = run_dispatch(get_runtime(), posted.body["id"], remaining_ms=remaining_ms)
    return Submitted(posted.status, posted.body, get(posted.body["id"]).body, done)


def get(job_id: str) -> HttpAnswer:
    return answer(handler.lambda_handler(api_event("GET", f"/jobs/{job_id}"), FakeContext()))


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        for name, (url, _) in SUBMIT.items():
            mocked.post(url, name=name).respond(200, json=accepted(name))
        yield mocked


@pytest.fixture
def runtime_with(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter
) -> Callable[..., Runtime]:
    def build(**settings: Any) -> Runtime:
        return install_runtime(cloud.runtime(httpx.Client(), **settings))

    return build


@pytest.fixture
def rt(runtime_with: Callable[..., Runtime]) -> Runtime:
    return runtime_with()


def sent(router: respx.MockRouter, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(router.routes[name].calls.last.request.content)
    return body


def calls(router: respx.MockRouter) -> dict[str, int]:
    return {name: router.routes[name].call_count for name in SUBMIT if router.routes[name].call_count}


def stored(rt: Runtime, job_id: str) -> JobRecord:
    job = rt.jobs.get(job_id)
    assert job is not None
    return job


# -- recording order -----------------------------------------------------------------------------


def call_dispatch(rt: Runtime, job_id: str) -> Round:
    return run_dispatch(rt, job_id)


@pytest.mark.parametrize(("provider", "first_wait"), [("kie", 90), ("aimlapi", 15)])
def test_the_job_is_recorded_submitting_and_its_workflow_started_before_the_provider_is_called(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, provider: str, first_wait: int
) -> None:
    seen: list[tuple[list[JobRecord], list[dict[str, Any]]]] = []

    def provider_answers(request: httpx.Request) -> httpx.Response:
        seen.append((rt.jobs.list_for_tenant("tenant-a").items, cloud.executions()))
        return httpx.Response(200, json=accepted(provider))

    router.routes[provider].mock(side_effect=provider_answers)

    posted = post({"prompt": "a fox", "provider": provider, **FOR_PROVIDER[provider]})
    assert posted.status == 202
    assert posted.body["status"] == "submitting"
    assert seen == []  # admission calls no provider
    result = call_dispatch(rt, posted.body["id"])
    assert result.dispatched
    assert result.output["wait_seconds"] == first_wait
    [(jobs_then, executions_then)] = seen
    [job_then] = jobs_then
    assert job_then.id == posted.body["id"]
    assert job_then.status is JobStatus.SUBMITTING
    assert job_then.provider_task_id is None
    [execution] = executions_then
    assert execution["name"] == job_then.id
    assert execution["status"] == "RUNNING"
    started = cloud.clients["stepfunctions"].describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {
        "job_id": job_then.id,
        "callback_base": "https://api.example.com/v1",
        "rounds": 0,
    }

    job = stored(rt, job_then.id)
    assert job.status is JobStatus.QUEUED
    assert job.provider_task_id == TASK_IDS[provider]
    assert [a.outcome.value for a in job.attempts] == ["accepted"]
    assert len(cloud.executions()) == 1


class RefusingStepFunctions:
    """Step Functions refusing every start, as when throttled: the job's workflow cannot start."""

    def start_execution(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution")


def test_a_workflow_that_cannot_start_is_a_503_the_job_failed_and_the_key_free_again(
    rt: Runtime, router: respx.MockRouter
) -> None:
    rt._clients["stepfunctions"] = RefusingStepFunctions()
    event = api_event("POST", "/jobs", body={"prompt": "a fox", "provider": "kie"}, headers={"Idempotency-Key": "k1"})

    refused = answer(handler.lambda_handler(event, FakeContext()))

    assert (refused.status, refused.error_code) == (503, "tracking_unavailable")
    [job] = rt.jobs.list_for_tenant("tenant-a").items
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert calls(router) == {}  # nothing was sent to a provider
    assert answer(handler.lambda_handler(event, FakeContext())).error_code == "tracking_unavailable"
    assert len(rt.jobs.list_for_tenant("tenant-a").items) == 2  # the key was released: the retry is a new job


# -- callback URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "field"), [("kie", "callBackUrl"), ("vidgo", "callback_url")])
def test_callback_providers_get_a_per_job_callback_url_with_a_valid_token(
    rt: Runtime, router: respx.MockRouter, provider: str, field: str
) -> None:
    result = call({"prompt": "a fox", "provider": provider})
    job_id = result.body["id"]

    url = urlsplit(sent(router, provider)[field])

    assert (url.scheme, url.netloc, url.path) == ("https", "api.example.com", f"/v1/callbacks/{provider}/{job_id}")
    [token] = parse_qs(url.query)["token"]
    signing = SigningKeys(SIGNING_SECRET)
    assert signing.callback_token_valid(job_id, provider, token)
    assert not signing.callback_token_valid(job_id[:-1] + ("0" if job_id[-1] != "0" else "1"), provider, token)
    other = "vidgo" if provider == "kie" else "kie"
    assert not signing.callback_token_valid(job_id, other, token)


def test_without_a_configured_base_the_callback_url_is_the_address_the_request_came_in_on(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    runtime_with(public_base_url="")
    job_id = call({"prompt": "a fox", "provider": "kie"}).body["id"]
    url = urlsplit(sent(router, "kie")["callBackUrl"])
    assert (url.netloc, url.path) == ("abc123.execute-api.us-east-1.amazonaws.com", f"/v1/callbacks/kie/{job_id}")


@pytest.mark.parametrize("provider", ["aimlapi", "pixwith", "apimart"])
def test_poll_only_providers_get_no_callback_url(rt: Runtime, router: respx.MockRouter, provider: str) -> None:
    result = call({"prompt": "a fox", "provider": provider, **FOR_PROVIDER[provider]})
    assert result.status == 202
    body = json.dumps(sent(router, provider)).lower()
    assert "callback" not in body
    assert "api.example.com" not in body


# -- cost ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "extra", "amount"),
    [
        ("kie", {}, 55),
        ("kie", {"duration": 10, "sound": True}, 220),
        ("pixwith", {}, 45),
        ("pixwith", {"duration": 5, "sound": True}, 90),
        ("vidgo", {}, None),
        ("aimlapi", {"quality": "pro"}, None),
        ("apimart", {"quality": "std"}, None),
    ],
)
def test_kie_and_pixwith_jobs_carry_estimated_credits_and_others_none(
    rt: Runtime, provider: str, extra: dict[str, Any], amount: int | None
) -> None:
    result = call({"prompt": "a fox", "provider": provider, **extra})
    assert result.status == 202
    cost = result.body["cost"]
    job = stored(rt, result.body["id"])
    if amount is None:
        assert cost is None
        assert job.cost is None
        return
    assert cost["amount"] == amount
    assert cost["unit"] == "provider_credits"
    assert cost["estimated"] is True
    assert cost["basis"]
    assert job.cost is not None
    assert job.cost.amount == amount


# -- failover with auto --------------------------------------------------------------------------

FIRST_FAILURES = [
    pytest.param(
        httpx.Response(429, headers={"Retry-After": "30"}, json={"msg": "slow down"}), "unavailable", id="429"
    ),
    pytest.param(httpx.Response(455, json={"msg": "maintenance"}), "unavailable", id="455"),
    pytest.param(httpx.Response(500, json={"msg": "boom"}), "unavailable", id="500"),
    pytest.param(httpx.Response(503, text="<html>down</html>"), "unavailable", id="503"),
    pytest.param(httpx.Response(402, json={"msg": "insufficient credits"}), "unavailable", id="402"),
    pytest.param(httpx.Response(404, json={"msg": "no such model here"}), "unavailable", id="404"),
    pytest.param(httpx.Response(433, json={"msg": "sub-key usage over its limit"}), "unavailable", id="433"),
    pytest.param(httpx.ConnectTimeout("connect timed out"), "unavailable", id="connect-timeout"),
    pytest.param(httpx.ConnectError("refused"), "unavailable", id="connect-error"),
    pytest.param(httpx.ReadTimeout("read timed out"), "interrupted", id="read-timeout"),
]


@pytest.mark.parametrize(("failure", "outcome"), FIRST_FAILURES)
def test_auto_fails_over_to_the_next_provider_on_a_retryable_failure(
    rt: Runtime, router: respx.MockRouter, failure: httpx.Response | Exception, outcome: str
) -> None:
    router.routes["vidgo"].mock(side_effect=[failure])

    result = call({"prompt": "a fox"})

    assert result.status == 202, result.body
    assert calls(router) == {"vidgo": 1, "kie": 1}
    assert result.body["provider"] == "kie"
    assert result.body["status"] == "queued"
    assert result.body["provider_task_id"] == TASK_IDS["kie"]
    assert [(a["provider"], a["outcome"]) for a in result.body["attempts"]] == [
        ("vidgo", outcome),
        ("kie", "accepted"),
    ]
    first = result.body["attempts"][0]
    if isinstance(failure, httpx.Response):
        assert first["http_status"] == failure.status_code
    assert first["message"]
    job = stored(rt, result.body["id"])
    assert job.provider == "kie"
    assert [a.provider for a in job.attempts] == ["vidgo", "kie"]
    assert job.cost is not None  # switched to Kie's price with the provider
    assert job.cost.amount == 55
    assert urlsplit(sent(router, "kie")["callBackUrl"]).path == f"/v1/callbacks/kie/{job.id}"


def test_a_refusal_in_words_the_relay_does_not_know_fails_over_as_an_attempt(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    runtime_with(provider_order=("pixwith", "kie"))
    router.routes["pixwith"].respond(200, json={"code": 0, "message": "Model temporarily offline"})

    result = call({"prompt": "a fox"})

    assert result.status == 202, result.body
    assert calls(router) == {"pixwith": 1, "kie": 1}
    assert [(a["provider"], a["outcome"], a.get("message")) for a in result.body["attempts"]] == [
        ("pixwith", "unavailable", "Model temporarily offline"),
        ("kie", "accepted", None),
    ]


def test_a_429_attempt_keeps_the_providers_retry_after(rt: Runtime, router: respx.MockRouter) -> None:
    router.routes["vidgo"].mock(side_effect=[httpx.Response(429, headers={"Retry-After": "30"}, json={})])
    result = call({"prompt": "a fox"})
    assert result.body["attempts"][0]["retry_after_seconds"] == 30


@pytest.mark.parametrize("status", [400, 422])
def test_a_provider_refusing_the_request_does_not_fail_over(rt: Runtime, router: respx.MockRouter, status: int) -> None:
    router.routes["vidgo"].respond(status, json={"code": status, "msg": "prompt violates content policy"})

    result = call({"prompt": "a fox"})

    assert result.status == 202
    assert result.round is not None
    assert result.round.done
    error = result.body["error"]
    assert error["code"] == "provider_rejected"
    assert "prompt violates content policy" in error["message"]
    assert calls(router) == {"vidgo": 1}
    assert [(a["provider"], a["outcome"], a["http_status"]) for a in result.body["attempts"]] == [
        ("vidgo", "rejected", status)
    ]
    job = stored(rt, result.body["id"])
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code.value == "provider_rejected"


def test_all_providers_failing_leaves_the_job_waiting_with_every_attempt_and_the_soonest_retry(
    rt: Runtime, router: respx.MockRouter
) -> None:
    router.routes["vidgo"].respond(429, headers={"Retry-After": "30"}, json={"msg": "slow down"})
    router.routes["kie"].respond(500, json={"code": 500, "msg": "server error"})
    router.routes["aimlapi"].respond(503, json={"message": "unavailable"})
    router.routes["pixwith"].respond(200, json={"code": 0, "message": "Credits not enough"})
    router.routes["apimart"].respond(429, headers={"Retry-After": "120"}, json={"code": 429})

    result = call({"prompt": "a fox"})

    assert result.status == 202
    assert result.round is not None
    assert (result.round.done, result.round.dispatched) == (False, False)
    assert result.body["status"] == "submitting"
    assert calls(router) == dict.fromkeys(SUBMIT, 1)
    attempts = result.body["attempts"]
    assert [(a["provider"], a["outcome"]) for a in attempts] == [(name, "unavailable") for name in SUBMIT]
    assert [a.get("retry_after_seconds") for a in attempts] == [30, None, None, None, 120]
    waiting = result.body["waiting"]
    assert (waiting["reason"], waiting["provider"]) == ("provider_unavailable", "vidgo")
    assert result.round.output["wait_seconds"] >= 1
    assert stored(rt, result.body["id"]).handoff_at is None


def test_a_429_with_retry_after_pauses_that_provider_for_every_job(rt: Runtime, router: respx.MockRouter) -> None:
    router.routes["kie"].mock(side_effect=[httpx.Response(429, headers={"Retry-After": "30"}, json={"code": 429})])

    first = call({"prompt": "a fox", "provider": "kie"})
    second = call({"prompt": "another fox", "provider": "kie"})

    assert calls(router) == {"kie": 1}  # the second job was never sent: Kie asked for 30 s of quiet
    assert first.body["waiting"]["reason"] == "provider_unavailable"
    assert second.body["waiting"]["reason"] == "paused"
    assert second.body["attempts"] == []
    assert second.round is not None
    # It booked Kie's first slot after the pause and wakes just before it (the Wait counts whole seconds).
    booking = second.round.output["booking"]
    assert booking["provider"] == "kie"
    assert booking["at"] >= time.time() + 29
    assert second.round.output["wait_seconds"] >= 29
    assert datetime.fromisoformat(second.body["waiting"]["next_attempt_at"]).timestamp() == pytest.approx(
        booking["at"], abs=0.01
    )


def test_failover_stops_when_the_functions_time_runs_out(rt: Runtime, router: respx.MockRouter) -> None:
    router.routes["vidgo"].respond(500, json={"msg": "boom"})
    result = call({"prompt": "a fox"}, remaining_ms=7_000)
    assert result.body["status"] == "submitting"
    assert calls(router) == {"vidgo": 1}
    assert [a["provider"] for a in result.body["attempts"]] == ["vidgo"]
    assert result.round is not None
    assert result.round.output["wait_seconds"] == 1  # the next round continues at once


# -- a named provider failing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "outcome", "code"),
    [
        (httpx.Response(500, json={"code": 500, "msg": "server error"}), "waiting", None),
        (httpx.Response(429, json={"code": 429, "msg": "slow down"}), "waiting", None),
        (httpx.Response(402, json={"code": 402, "msg": "insufficient credits"}), "waiting", None),
        (httpx.Response(400, json={"code": 400, "msg": "bad image"}), "failed", "provider_rejected"),
        (httpx.Response(200, json={"code": 422, "msg": "prompt too long"}), "failed", "provider_rejected"),
    ],
)
def test_a_named_provider_failing_is_on_the_job_readable(
    rt: Runtime, router: respx.MockRouter, failure: httpx.Response, outcome: str, code: str | None
) -> None:
    router.routes["kie"].mock(side_effect=[failure])

    result = call({"prompt": "a fox", "provider": "kie"})

    assert result.status == 202
    assert calls(router) == {"kie": 1}
    read = get(result.body["id"])
    assert read.status == 200
    assert read.body["provider"] == "kie"
    assert [a["provider"] for a in read.body["attempts"]] == ["kie"]
    if outcome == "failed":
        assert read.body["status"] == "failed"
        assert read.body["error"]["code"] == code
        assert read.body["completed_at"] is not None
        assert read.body["waiting"] is None
    else:  # offered again after a wait, until the deadline
        assert read.body["status"] == "submitting"
        assert read.body["waiting"]["provider"] == "kie"
        assert read.body["error"] is None


def test_a_read_timeout_records_an_interrupted_attempt(rt: Runtime, router: respx.MockRouter) -> None:
    router.routes["kie"].mock(side_effect=httpx.ReadTimeout("no answer"))

    result = call({"prompt": "a fox", "provider": "kie"})

    assert result.status == 202
    job = stored(rt, result.body["id"])
    assert job.status is JobStatus.FAILED
    [attempt] = job.attempts
    assert attempt.provider == "kie"
    assert attempt.outcome.value == "interrupted"
    assert attempt.message == "no answer (ReadTimeout)"
    # Kie may hold a task we never heard of: the job says so rather than "unavailable".
    assert job.error is not None
    assert job.error.code.value == "submit_interrupted"


def test_a_task_id_the_provider_never_sent_is_not_invented(rt: Runtime, router: respx.MockRouter) -> None:
    router.routes["kie"].respond(200, json={"code": 200, "msg": "success", "data": {}})
    result = call({"prompt": "a fox", "provider": "kie"})
    assert result.status == 202
    job = stored(rt, result.body["id"])
    assert job.provider_task_id is None
    assert job.status is JobStatus.FAILED
    assert [a.outcome.value for a in job.attempts] == ["interrupted"]


def test_a_cfg_scale_too_small_for_dynamodb_is_accepted_and_recorded_as_zero(
    rt: Runtime, router: respx.MockRouter
) -> None:
    # Found by the API fuzz suite: DynamoDB holds no number nearer zero than 1E-130, and storing it was a 500.
    body = {"prompt": "a fox", "provider": "aimlapi", "cfg_scale": 3.3617718986044146e-198, **FOR_PROVIDER["aimlapi"]}
    result = call(body)
    assert result.status == 202, result.body
    assert stored(rt, result.body["id"]).request.cfg_scale == 0.0
    assert sent(router, "aimlapi")["cfg_scale"] < 1e-100


# -- booked slots ------------------------------------------------------------------------------------

ONE_PER_2S = ProviderLimit(submits_per_window=1, window_seconds=2, max_in_flight=50)


def test_a_job_past_a_spent_rate_books_the_next_slot_and_is_sent_in_it(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    rt = runtime_with(provider_limits={"kie": ONE_PER_2S})
    router.routes["kie"].mock(side_effect=fresh_kie_task)
    first = call({"prompt": "a fox", "provider": "kie"})
    second = call({"prompt": "another fox", "provider": "kie"})

    assert first.body["status"] == "queued"
    assert second.round is not None
    booking = second.round.output["booking"]
    assert booking["provider"] == "kie"
    assert booking["at"] == pytest.approx(time.time() + 2 + SPACING_GUARD_SECONDS, abs=0.5)
    assert second.body["waiting"]["reason"] == "rate_limited"
    assert calls(router) == {"kie": 1}

    # The workflow's Wait (whole seconds) wakes it a little early; the round waits out the rest and sends the job.
    time.sleep(second.round.output["wait_seconds"])
    after = dispatch_round({**second.round.output})
    assert after.dispatched
    assert time.time() >= booking["at"]
    assert calls(router) == {"kie": 2}
    job = stored(rt, second.body["id"])
    assert (job.status, job.waiting) == (JobStatus.QUEUED, None)


def test_a_slot_due_within_a_second_is_waited_for_in_the_same_round(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    runtime_with(provider_limits={"kie": ProviderLimit(submits_per_window=2, window_seconds=0.5, max_in_flight=50)})
    router.routes["kie"].mock(side_effect=fresh_kie_task)
    answers = [call({"prompt": f"fox {i}", "provider": "kie"}) for i in range(3)]

    assert [a.body["status"] for a in answers] == ["queued"] * 3
    assert answers[2].round is not None
    assert answers[2].round.dispatched
    assert calls(router) == {"kie": 3}


def test_auto_books_the_candidate_whose_slot_comes_first(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    slow = ProviderLimit(submits_per_window=1, window_seconds=60, max_in_flight=50)
    limits = dict.fromkeys(SUBMIT, slow) | {"apimart": slow.model_copy(update={"window_seconds": 20})}
    runtime_with(provider_limits=limits)
    for name in SUBMIT:
        router.routes[name].respond(200, json=accepted(name))
    # Two providers offer pro quality, aimlapi first: one job each spends their one slot.
    first = [call({"prompt": f"fox {i}", "quality": "pro"}) for i in range(2)]
    assert [(a.body["provider"], a.body["status"]) for a in first] == [("aimlapi", "queued"), ("apimart", "queued")]

    waiting = call({"prompt": "one more", "quality": "pro"})

    assert waiting.round is not None
    assert waiting.round.output["booking"]["provider"] == "apimart"  # free again in 20 s, aimlapi in 60 s
    assert waiting.body["waiting"]["provider"] == "apimart"
    assert calls(router) == {"aimlapi": 1, "apimart": 1}


def test_a_job_canceled_while_it_holds_a_booking_is_never_sent(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    rt = runtime_with(provider_limits={"kie": ONE_PER_2S})
    router.routes["kie"].mock(side_effect=fresh_kie_task)
    call({"prompt": "a fox", "provider": "kie"})
    second = call({"prompt": "another fox", "provider": "kie"})
    assert second.round is not None
    assert second.round.output["booking"] is not None

    canceled = answer(handler.lambda_handler(api_event("POST", f"/jobs/{second.body['id']}/cancel"), FakeContext()))
    assert canceled.status == 200
    after = dispatch_round({**second.round.output})

    assert after.done
    assert calls(router) == {"kie": 1}
    assert stored(rt, second.body["id"]).status is JobStatus.CANCELED


def test_a_booked_job_whose_window_of_sends_is_full_keeps_its_slot_moved_later(
    runtime_with: Callable[..., Runtime], router: respx.MockRouter
) -> None:
    one_per_s = ProviderLimit(submits_per_window=1, window_seconds=1, max_in_flight=50)
    rt = runtime_with(provider_limits={"kie": one_per_s})
    router.routes["kie"].mock(side_effect=fresh_kie_task)
    call({"prompt": "a fox", "provider": "kie"})
    second = call({"prompt": "another fox", "provider": "kie"})
    assert second.round is not None
    booking = second.round.output["booking"]
    time.sleep(max(0.0, booking["at"] - time.time()))
    # Another booked job, late for an earlier slot, sent just now: the window of sends is full for 1.5 s.
    assert rt.pacer.acquire("kie", "late_one", booked=True).granted

    moved = dispatch_round({**second.round.output})

    assert not moved.dispatched
    assert moved.output["booking"]["provider"] == "kie"
    assert moved.output["booking"]["at"] == pytest.approx(time.time() + 1 + SPACING_GUARD_SECONDS, abs=0.3)
    assert calls(router) == {"kie": 1}
    time.sleep(max(0.0, moved.output["booking"]["at"] - time.time()))
    sent_in_its_slot = dispatch_round({**moved.output})
    assert sent_in_its_slot.dispatched
    assert calls(router) == {"kie": 2}
