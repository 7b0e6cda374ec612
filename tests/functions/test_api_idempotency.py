"""`Idempotency-Key` on `POST /jobs`: replays, conflicts, tenancy, and retrying after a failed submission."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.support.events import FakeContext, HttpAnswer, answer, api_event
from tests.support.workflow import run_dispatch, then_dispatched

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

KIE_SUBMIT = "https://api.kie.ai/api/v1/jobs/createTask"
KIE_ACCEPTED = httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "kie-task-1"}})
BODY = {"prompt": "a fox in snow", "provider": "kie", "duration": 10}


def post(
    body: Any = None, *, key: str | None = "order-42", tenant: str = "tenant-a", raw: str | None = None
) -> HttpAnswer:
    headers = {"Idempotency-Key": key} if key is not None else {}
    event = api_event("POST", "/jobs", body=body, raw_body=raw, headers=headers, tenant=tenant)
    return then_dispatched(answer(handler.lambda_handler(event, FakeContext())))


@pytest.fixture
def kie() -> Iterator[respx.Route]:
    with respx.mock(assert_all_called=False) as router:
        count = itertools.count(1)

        def accepted(request: httpx.Request) -> httpx.Response:
            # Each task its own id: a task id is held by one job only.
            return httpx.Response(
                200, json={"code": 200, "msg": "success", "data": {"taskId": f"kie-task-{next(count)}"}}
            )

        yield router.post(KIE_SUBMIT).mock(side_effect=accepted)


@pytest.fixture
def rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], kie: respx.Route) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client()))


def job_items(cloud: Cloud) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"]
    return [item for item in items if item["entity"]["S"] == "job"]


def test_same_key_and_body_returns_the_same_job_without_calling_the_provider_again(
    rt: Runtime, cloud: Cloud, kie: respx.Route
) -> None:
    first = post(BODY)
    again = post(BODY)

    assert first.status == again.status == 202
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.body["id"] == first.body["id"]
    assert again.body["status"] == "queued"
    assert again.body["provider_task_id"] == "kie-task-1"
    assert kie.call_count == 1
    assert len(job_items(cloud)) == 1
    assert len(cloud.executions()) == 1


def test_the_same_request_spelled_differently_is_a_replay(rt: Runtime, kie: respx.Route) -> None:
    first = post({"prompt": "a fox", "provider": "kie"})
    again = post(raw='{ "sound": false, "duration": 5, "provider": "kie", "prompt": "a fox", "metadata": {} }')
    assert again.status == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.body["id"] == first.body["id"]
    assert kie.call_count == 1


def test_same_key_with_another_body_is_409_and_changes_nothing(rt: Runtime, cloud: Cloud, kie: respx.Route) -> None:
    first = post(BODY)
    conflict = post({**BODY, "prompt": "a wolf in snow"})

    assert conflict.status == 409
    assert conflict.body["error"]["code"] == "idempotency_conflict"
    assert conflict.body["error"]["details"] == {"job_id": first.body["id"]}
    assert kie.call_count == 1
    assert len(job_items(cloud)) == 1
    assert len(cloud.executions()) == 1


def test_keys_belong_to_their_tenant(rt: Runtime, kie: respx.Route) -> None:
    mine = post(BODY, tenant="tenant-a")
    theirs = post(BODY, tenant="tenant-b")
    other_body = post({**BODY, "prompt": "a wolf"}, tenant="tenant-c")

    assert mine.status == theirs.status == other_body.status == 202
    assert "idempotent-replayed" not in theirs.headers
    assert len({mine.body["id"], theirs.body["id"], other_body.body["id"]}) == 3
    assert kie.call_count == 3


def test_without_a_key_every_request_is_a_new_job(rt: Runtime, kie: respx.Route) -> None:
    first = post(BODY, key=None)
    second = post(BODY, key=None)
    assert first.body["id"] != second.body["id"]
    assert kie.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(500, json={"code": 500, "msg": "server error"}), id="unavailable"),
        pytest.param(httpx.Response(402, json={"code": 402, "msg": "insufficient credits"}), id="no-credits"),
        pytest.param(httpx.ConnectError("refused"), id="unreachable"),
    ],
)
def test_a_retry_while_the_job_waits_for_its_provider_is_the_same_job_and_sends_nothing_twice(
    rt: Runtime, kie: respx.Route, failure: httpx.Response | Exception
) -> None:
    kie.mock(side_effect=[failure, KIE_ACCEPTED])

    first = post(BODY)
    retried = post(BODY)

    assert first.status == retried.status == 202
    assert first.body["status"] == "submitting"
    assert first.body["waiting"]["provider"] == "kie"
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.body["id"] == first.body["id"]
    assert kie.call_count == 1
    # The workflow's next round hands it to Kie: one job, one task.
    assert run_dispatch(rt, first.body["id"]).dispatched
    assert kie.call_count == 2
    assert post(BODY).body["status"] == "queued"


def test_after_a_provider_rejected_the_job_the_key_keeps_the_failed_job(rt: Runtime, kie: respx.Route) -> None:
    # The app was answered 202 with this job; its outcome is the job's, and a replay says what it was.
    kie.mock(side_effect=[httpx.Response(400, json={"code": 400, "msg": "bad request"}), KIE_ACCEPTED])

    failed = post(BODY)
    retried = post(BODY)

    assert failed.status == 202
    assert failed.body["status"] == "failed"
    assert failed.body["error"]["code"] == "provider_rejected"
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.body["id"] == failed.body["id"]
    assert kie.call_count == 1


def test_after_an_interrupted_submission_the_key_keeps_the_failed_job(rt: Runtime, kie: respx.Route) -> None:
    # Kie may have created a task before the answer was lost: a retry must not make a second one.
    kie.mock(side_effect=[httpx.ReadTimeout("no answer"), KIE_ACCEPTED])

    failed = post(BODY)
    retried = post(BODY)

    assert failed.status == 202
    assert retried.status == 202
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.body["id"] == failed.body["id"]
    assert retried.body["status"] == "failed"
    assert retried.body["error"]["code"] == "submit_interrupted"
    assert kie.call_count == 1


def test_a_refused_request_does_not_claim_the_key(rt: Runtime, cloud: Cloud, kie: respx.Route) -> None:
    refused = post({**BODY, "quality": "pro"})
    assert refused.status == 422
    accepted = post(BODY)
    assert accepted.status == 202
    assert "idempotent-replayed" not in accepted.headers
    assert kie.call_count == 1
