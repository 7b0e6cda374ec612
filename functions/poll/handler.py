"""The poller state machine's task: check one job once and say how long to wait."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, tracer
from shared.runtime import get_runtime
from shared.services.poll import PollInput, poll_once


@logger.inject_lambda_context(correlation_id_path="job_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = poll_once(get_runtime(), PollInput.model_validate(event))
    logger.info("polled", status=result.status, done=result.done, wait_seconds=result.wait_seconds)
    return result.model_dump()
