"""Submitting a job: validate, record, start tracking, then hand it to a provider (failing over).

Order matters: the job (and its idempotency claim) is stored before any provider is called, and
its poller starts before the provider call too, so a job whose submitting function dies mid-call
is found and settled by the poller instead of hanging.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from shared.errors import ProviderRejectedError, ProviderUnavailableError, RelayError
from shared.ids import new_job_id
from shared.models.common import JobStatus, ProviderName
from shared.models.job import Attempt, AttemptOutcome, Cost, ErrorCode, JobError, JobRecord
from shared.models.request import JobRequest
from shared.observability import logger
from shared.providers.base import Provider, SubmitResult
from shared.providers.errors import ProviderError
from shared.repository.codec import error_code
from shared.repository.jobs import IdempotencyClaim
from shared.runtime import Runtime
from shared.secrets import ProviderCredentials
from shared.services.admission import create_admitted
from shared.services.motion import measure_reference
from shared.services.routing import candidates
from shared.services.transitions import Change, Decision, settle

# Time kept back from the caller's budget for recording the outcome after the last provider call.
RESERVE_SECONDS = 2.0
MIN_ATTEMPT_SECONDS = 3.0


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


def first_wait_seconds(rt: Runtime, adapter: Provider) -> int:
    if adapter.capabilities.callbacks:
        return rt.settings.callback_first_wait_seconds
    return rt.settings.poll_min_wait_seconds


def start_tracking(rt: Runtime, job: JobRecord, wait_seconds: int) -> None:
    """Start the job's poller, named after the job (starting it twice is harmless)."""
    rt.require("state_machine_arn")
    try:
        rt.client("stepfunctions").start_execution(
            stateMachineArn=rt.settings.state_machine_arn,
            name=job.id,
            input=json.dumps({"job_id": job.id, "wait_seconds": wait_seconds, "polls": 0}),
        )
    except ClientError as exc:
        if error_code(exc) == "ExecutionAlreadyExists":
            return
        raise TrackingStartError("job tracking could not start; retry the request") from exc


def submit_job(
    rt: Runtime,
    tenant_id: str,
    request: JobRequest,
    *,
    idempotency_key: str | None,
    callback_base: str,
    time_budget_seconds: float = 25.0,
) -> SubmitOutcome:
    started = time.monotonic()
    check_request_urls(rt, request)
    credentials = rt.provider_credentials()
    order = candidates(request, rt.settings, credentials)
    request = measure_reference(rt, request)
    first = rt.provider(order[0], credentials)

    now = rt.clock()
    cost = first.estimate_cost(request)
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
        start_tracking(rt, job, first_wait_seconds(rt, first))
    except TrackingStartError:
        _give_up_before_provider(rt, job, claim)
        raise

    deadline = started + time_budget_seconds - RESERVE_SECONDS
    job = _hand_to_provider(
        rt, job, order=order, credentials=credentials, callback_base=callback_base, deadline=deadline, claim=claim
    )
    return SubmitOutcome(job, created=True)


def _give_up_before_provider(rt: Runtime, job: JobRecord, claim: IdempotencyClaim | None) -> None:
    error = JobError(code=ErrorCode.PROVIDER_UNAVAILABLE, message="job tracking could not start; nothing was sent")
    settle(rt.jobs, job, lambda j: Change(JobStatus.FAILED, {"error": error}) if not j.terminal else None)
    if claim is not None:
        rt.jobs.release_claim(claim, job.id)


def _attempt(rt: Runtime, name: ProviderName, err: ProviderError | None) -> Attempt:
    if err is None:
        return Attempt(provider=name, at=rt.clock(), outcome=AttemptOutcome.ACCEPTED)
    if err.maybe_accepted:
        outcome = AttemptOutcome.INTERRUPTED
    elif err.failover:
        outcome = AttemptOutcome.UNAVAILABLE
    else:
        outcome = AttemptOutcome.REJECTED
    return Attempt(
        provider=name,
        at=rt.clock(),
        outcome=outcome,
        http_status=err.http_status,
        error_code=err.provider_code,
        message=err.message,
        retry_after_seconds=err.retry_after,
    )


def _hand_to_provider(
    rt: Runtime,
    job: JobRecord,
    *,
    order: list[ProviderName],
    credentials: ProviderCredentials,
    callback_base: str,
    deadline: float,
    claim: IdempotencyClaim | None,
) -> JobRecord:
    last_error: ProviderError | None = None
    for index, name in enumerate(order):
        remaining = deadline - time.monotonic()
        if index > 0 and remaining < MIN_ATTEMPT_SECONDS:
            break
        adapter = rt.provider(name, credentials)
        if job.provider != name:
            job = settle(rt.jobs, job, _switch_provider(name, adapter.estimate_cost(job.request)))
            if job.status is not JobStatus.SUBMITTING:
                return job
        url = callback_url(rt, callback_base, name, job.id) if adapter.capabilities.callbacks else None
        try:
            result = adapter.submit(job.request, url, timeout=min(rt.settings.provider_read_timeout, remaining))
        except ProviderError as err:
            logger.warning("provider refused job", provider=name, kind=err.kind.value, status=err.http_status)
            attempt = _attempt(rt, name, err)
            job = settle(rt.jobs, job, _record_attempt(attempt))
            last_error = err
            if err.failover and job.status is JobStatus.SUBMITTING:
                continue
            break
        return _accepted(rt, job, name, result)
    return _fail_submission(rt, job, last_error, claim)


def _switch_provider(name: ProviderName, cost: Cost | None) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        return Change(None, {"provider": name, "cost": cost}) if job.status is JobStatus.SUBMITTING else None

    return decide


def _record_attempt(attempt: Attempt) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.terminal:
            return None
        return Change(None, {"attempts": (*job.attempts, attempt)})

    return decide


def _accepted(rt: Runtime, job: JobRecord, name: ProviderName, result: SubmitResult) -> JobRecord:
    attempt = _attempt(rt, name, None)

    def decide(current: JobRecord) -> Change | None:
        fields = {"attempts": (*current.attempts, attempt), "provider_estimate_seconds": result.estimated_seconds}
        if current.status is JobStatus.SUBMITTING:
            return Change(JobStatus.QUEUED, {**fields, "provider_task_id": result.task_id})
        # A callback overtook the answer and already moved the job on (it carried the same task id).
        return None if current.terminal else Change(None, fields)

    return settle(rt.jobs, job, decide)


def _fail_submission(
    rt: Runtime, job: JobRecord, err: ProviderError | None, claim: IdempotencyClaim | None
) -> JobRecord:
    unavailable = err is None or err.failover
    maybe_accepted = any(a.outcome is AttemptOutcome.INTERRUPTED for a in job.attempts)
    if maybe_accepted:
        code = ErrorCode.SUBMIT_INTERRUPTED  # a provider may hold (and charge for) a task we never heard of
    else:
        code = ErrorCode.PROVIDER_UNAVAILABLE if unavailable else ErrorCode.PROVIDER_REJECTED
    message = err.message if err is not None else "no provider could be tried in time"
    error = JobError(code=code, message=message, provider_code=err.provider_code if err else None)
    job = settle(
        rt.jobs, job, lambda j: Change(JobStatus.FAILED, {"error": error}) if j.status is JobStatus.SUBMITTING else None
    )
    if job.status is not JobStatus.FAILED:
        return job  # a callback proved a provider took it after all
    if claim is not None and not maybe_accepted:
        # Nothing was created at any provider: let a retry with the same key try again.
        rt.jobs.release_claim(claim, job.id)
    details = {
        "job_id": job.id,
        "attempts": [a.model_dump(mode="json", exclude_none=True) for a in job.attempts],
    }
    if unavailable:
        # The soonest any provider said it may take work again, not just the last one tried.
        known = [a.retry_after_seconds for a in job.attempts if a.retry_after_seconds is not None]
        raise ProviderUnavailableError(
            f"no provider could take the job: {message}", details=details, retry_after=min(known, default=None)
        )
    raise ProviderRejectedError(f"{job.provider} rejected the job: {message}", details=details)
