"""Provider callbacks: open route, verified in code, answered fast."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.apigw import RestResolver, body_bytes, error_response, json_body, register_error_handlers
from shared.errors import CallbackRejectedError
from shared.observability import logger, metrics, tracer
from shared.runtime import get_runtime
from shared.services.callbacks import CallbackResult, handle_callback

app = RestResolver(enable_validation=True, json_body_deserializer=json_body)
register_error_handlers(app)


def _rejected(exc: CallbackRejectedError) -> Response[Any]:
    metrics.add_metric(name="CallbacksRejected", unit=MetricUnit.Count, value=1)
    logger.warning("callback rejected", reason=exc.reason)
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


app.exception_handler(CallbackRejectedError)(_rejected)


@app.post("/callbacks/<provider>/<job_id>")
def callback(
    provider: Annotated[str, Path(max_length=32)],
    job_id: Annotated[str, Path(max_length=64)],
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> Response[Any]:
    logger.append_keys(job_id=job_id, provider=provider)
    event = app.current_event
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    outcome = handle_callback(get_runtime(), provider, job_id, token, body_bytes(event), headers)
    status = 202 if outcome.result is CallbackResult.DEFERRED else 200
    body = {"result": outcome.result.value, "status": outcome.job.status.value}
    return Response(status_code=status, content_type="application/json", body=body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
