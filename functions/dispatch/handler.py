"""The job workflow's first task: one round of handing the job to a provider; says whether to wait and how long."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, tracer
from shared.runtime import get_runtime
from shared.services.dispatch import DispatchInput, dispatch_once


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = context.get_remaining_time_in_millis() / 1000
    result = dispatch_once(get_runtime(), DispatchInput.model_validate(event), budget_seconds=budget)
    logger.info(
        "dispatch round", status=result.status, dispatched=result.dispatched, done=result.done, wait=result.wait_seconds
    )
    return result.model_dump()
