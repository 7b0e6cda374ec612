"""Running a job workflow's Dispatch task in function tests, as the state machine would after `POST /jobs`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from functions.dispatch import handler as dispatch_handler
from shared.runtime import Runtime, get_runtime
from shared.services.views import job_view
from tests.support.events import FakeContext, HttpAnswer


@dataclass
class Round:
    """One Dispatch round: the state machine's next state."""

    output: dict[str, Any]

    @property
    def dispatched(self) -> bool:
        return bool(self.output["dispatched"])

    @property
    def done(self) -> bool:
        return bool(self.output["done"])


def execution_input(rt: Runtime, job_id: str) -> dict[str, Any]:
    """The input the job's workflow was started with (the execution is named after the job)."""
    sfn = rt.client("stepfunctions")
    arn = rt.poller.execution_arn(job_id)
    started: dict[str, Any] = json.loads(sfn.describe_execution(executionArn=arn)["input"])
    return started


def dispatch_round(state: dict[str, Any], *, remaining_ms: int = 150_000) -> Round:
    return Round(dispatch_handler.lambda_handler(state, FakeContext(remaining_ms)))


def run_dispatch(rt: Runtime, job_id: str, *, remaining_ms: int = 150_000) -> Round:
    """The workflow's first Dispatch task, with the input the API started it with."""
    return dispatch_round(execution_input(rt, job_id), remaining_ms=remaining_ms)


def then_dispatched(posted: HttpAnswer) -> HttpAnswer:
    """After a `POST /jobs` that created a job, its workflow's first Dispatch round; the answer's body becomes the
    job as stored after it (status and headers stay the POST's)."""
    if posted.status != 202 or posted.headers.get("idempotent-replayed") == "true":
        return posted
    rt = get_runtime()
    job_id = posted.body["id"]
    run_dispatch(rt, job_id)
    job = rt.jobs.get(job_id)
    assert job is not None
    return HttpAnswer(status=posted.status, headers=posted.headers, body=job_view(rt, job).model_dump(mode="json"))
