"""Admitting a job: validate, record it in `submitting`, start its workflow. No provider is called here.

Order matters: the job (and its idempotency claim) is stored before its workflow starts, and the workflow's
first task hands it to a provider (shared/services/dispatch.py), pacing each provider and waiting while none
can take it. So a burst is answered at once, and a provider's refusal arrives as the job's `job.failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from shared.errors import RelayError
from shared.gateways.poller import PollerError
from shared.ids import new_job_id
from shared.models.common import JobStatus, ProviderName
from shared.models.job import ErrorCode, JobError, JobRecord
from shared.models.request import JobRequest
from shared.providers.registry import capabilities
from shared.repository.jobs import IdempotencyClaim
from shared.runtime import Runtime
from shared.services.admission import create_admitted
from shared.services.motion import measure_reference
from shared.services.routing import candidates
from shared.services.transitions import Change, settle
from shared.settings import Settings


@dataclass(frozen=True)
class SubmitOutcome:
    job: JobRecord
    created: bool


class TrackingStartError(RelayError):
    status_code = 503
    code = "tracking_unavailable"


def check_request_urls(rt: Runtime, request: JobRequest) -> None:
    motion = request.motion_control
    for field, value in (
        ("webhook_url", request.webhook_url),
        ("first_frame_url", request.first_frame_url),
        ("last_frame_url", request.last_frame_url),
        ("motion_control.image_url", motion.image_url if motion else None),
        ("motion_control.video_url", motion.video_url if motion else None),
    ):
        if value is not None:
            rt.url_guard.check(str(value), field=field)


def callback_url(rt: Runtime, base: str, provider: ProviderName, job_id: str) -> str:
    token = rt.signing_keys().callback_token(job_id, provider)
    return f"{base.rstrip('/')}/callbacks/{provider}/{job_id}?{urlencode({'token': token})}"


def first_wait_seconds(settings: Settings, provider: ProviderName) -> int:
    """How long after a provider took the job its first status check comes."""
    if capabilities(provider).callbacks:
        return settings.callback_first_wait_seconds
    return settings.poll_min_wait_seconds


def start_tracking(rt: Runtime, job: JobRecord, callback_base: str) -> None:
    """Start the job's workflow, named after the job (starting it twice is harmless): it dispatches, then polls."""
    try:
        rt.poller.start(job.id, callback_base=callback_base)
    except PollerError as exc:
        raise TrackingStartError("job tracking could not start; retry the request") from exc


def submit_job(
    rt: Runtime,
    tenant_id: str,
    request: JobRequest,
    *,
    idempotency_key: str | None,
    callback_base: str,
) -> SubmitOutcome:
    check_request_urls(rt, request)
    credentials = rt.provider_credentials()
    order = candidates(request, rt.settings, credentials)
    request = measure_reference(rt, request)

    now = rt.clock()
    cost = rt.provider(order[0], credentials).estimate_cost(request)
    job = JobRecord(
        id=new_job_id(),
        tenant_id=tenant_id,
        status=JobStatus.SUBMITTING,
        version=0,
        provider=order[0],
        request=request,
        cost=cost,
        reserved_credits=cost.amount if cost is not None else 0.0,
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=rt.settings.job_deadline_seconds),
    )
    claim = IdempotencyClaim(tenant_id, idempotency_key, request.fingerprint()) if idempotency_key else None
    created = create_admitted(rt, job, claim)
    if not created.created:
        return SubmitOutcome(created.job, created=False)

    try:
        start_tracking(rt, job, callback_base)
    except TrackingStartError:
        _give_up_before_provider(rt, job, claim)
        raise
    return SubmitOutcome(job, created=True)


def _give_up_before_provider(rt: Runtime, job: JobRecord, claim: IdempotencyClaim | None) -> None:
    error = JobError(code=ErrorCode.PROVIDER_UNAVAILABLE, message="job tracking could not start; nothing was sent")
    settle(rt.jobs, job, lambda j: Change(JobStatus.FAILED, {"error": error}) if not j.terminal else None)
    if claim is not None:
        rt.jobs.release_claim(claim, job.id)
