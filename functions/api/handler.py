"""The app-facing HTTP API: submit, read, list and cancel jobs; usage; providers; the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.apigw import ErrorBody, RestResolver, SettingsCors, base_url, json_body, register_error_handlers, tenant_of
from shared.models.common import JOB_ID_PATTERN, JobStatus, ProviderName
from shared.models.job import JobPage, JobView
from shared.models.request import JobRequest
from shared.models.usage import UsageView
from shared.observability import logger, metrics, tracer
from shared.runtime import get_runtime
from shared.services.cancel import cancel_job
from shared.services.catalog import ProviderCatalog, provider_catalog
from shared.services.submit import submit_job
from shared.services.usage import usage_of
from shared.services.views import job_view, page_view

API_TITLE = "Kling Relay"
API_VERSION = "1.0.0"
ERRORS: dict[int, OpenAPIResponse] = {
    status: OpenAPIResponse(description=description, content={"application/json": {"model": ErrorBody}})
    for status, description in {
        400: "Malformed request",
        401: "Missing, unknown or revoked API key",
        404: "No such job (or not yours)",
        409: "Idempotency-Key reused with another body, or the job already finished",
        415: "The body is not JSON",
        429: (
            "Too many requests: the tenant's rate or monthly quota (rate_limited), active jobs"
            " (too_many_active_jobs) or monthly credits (budget_exceeded), the route's throttle,"
            " or the web application firewall's limit per address"
        ),
        422: "A field is invalid or no provider can honour it",
        503: "No provider that can honour the request is configured, or the job's workflow could not start",
    }.items()
}
ACCEPTED: dict[int, OpenAPIResponse] = {
    202: OpenAPIResponse(
        description="Accepted: the job is recorded in `submitting` and its workflow hands it to a provider. "
        "A provider's refusal arrives as the job's `job.failed` event (`provider_rejected`, or "
        "`no_provider_available` when none could take it before the deadline), never as this answer.",
        content={"application/json": {"model": JobView}},
    )
}
# Powertools documents its default 200 only for routes declaring no responses, so routes that declare
# their errors name their 200 too.
ONE_JOB: dict[int, OpenAPIResponse] = {
    200: OpenAPIResponse(description="The job", content={"application/json": {"model": JobView}})
}
USAGE: dict[int, OpenAPIResponse] = {
    200: OpenAPIResponse(
        description="The caller's limits and what it used this month",
        content={"application/json": {"model": UsageView}},
    )
}
A_PAGE: dict[int, OpenAPIResponse] = {
    200: OpenAPIResponse(description="A page of jobs, newest first", content={"application/json": {"model": JobPage}})
}

# CORS for the console's origin when the deployment has one (`*` otherwise), from this invocation's settings.
app = RestResolver(
    enable_validation=True, cors=SettingsCors(lambda: get_runtime().settings), json_body_deserializer=json_body
)
register_error_handlers(app)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retries with the same key and body return the same job.",
    ),
]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN)]


@app.post("/jobs", responses={**ACCEPTED, **ERRORS}, tags=["jobs"])
def create_job(request: Annotated[JobRequest, Body()], idempotency_key: IdempotencyKey = None) -> Response[JobView]:
    rt = get_runtime()
    tenant = tenant_of(app.current_event)
    public_base = base_url(app.current_event, rt.settings.public_base_url)
    outcome = submit_job(
        rt,
        tenant,
        request,
        idempotency_key=idempotency_key,
        callback_base=public_base,
    )
    logger.append_keys(job_id=outcome.job.id)
    if outcome.created:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    # Absolute, with the stage: a bare "/jobs/..." would resolve outside the API's /v1 base.
    headers = {"Location": f"{public_base}/jobs/{outcome.job.id}"}
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=202, content_type="application/json", body=job_view(rt, outcome.job), headers=headers)


@app.get("/jobs", responses={**A_PAGE, **ERRORS}, tags=["jobs"])
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    provider: Annotated[ProviderName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobPage:
    rt = get_runtime()
    page = rt.jobs.list_for_tenant(
        tenant_of(app.current_event), status=status, provider=provider, limit=limit, cursor=cursor
    )
    return page_view(rt, page)


@app.get("/jobs/<job_id>", responses={**ONE_JOB, **ERRORS}, tags=["jobs"])
def get_job(job_id: JobIdPath) -> JobView:
    rt = get_runtime()
    return job_view(rt, rt.jobs.get_for_tenant(tenant_of(app.current_event), job_id))


@app.post("/jobs/<job_id>/cancel", responses={**ONE_JOB, **ERRORS}, tags=["jobs"])
def cancel(job_id: JobIdPath) -> JobView:
    rt = get_runtime()
    logger.append_keys(job_id=job_id)
    return job_view(rt, cancel_job(rt, tenant_of(app.current_event), job_id))


@app.get("/usage", responses={**USAGE, **ERRORS}, tags=["usage"])
def usage() -> UsageView:
    return usage_of(get_runtime(), tenant_of(app.current_event))


@app.get("/providers", tags=["providers"])
def providers() -> ProviderCatalog:
    return provider_catalog(get_runtime().settings)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    # Powertools' OpenAPI document models take longer to build than the rest of this handler's imports
    # together: only a request for the document pays for them.
    from aws_lambda_powertools.event_handler.openapi.models import Server  # noqa: PLC0415

    document = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="One API for Kling 2.6 video generation over five providers.",
        servers=[Server(url="/v1")],
    )
    return Response(status_code=200, content_type="application/json", body=document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
