"""One poll of one job: the Step Functions task. The state machine owns the waiting.

Each call checks the job once and returns whether tracking is done and how long to wait next:
the provider's own estimate first, then exponential backoff with jitter up to a cap, never past
the job's deadline (when the job becomes `timed_out`).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.models.common import JobId, JobStatus
from shared.models.job import Attempt, AttemptOutcome, ErrorCode, JobError, JobRecord
from shared.observability import logger
from shared.providers.errors import ErrorKind, ProviderError
from shared.runtime import Runtime
from shared.services.transitions import Change, Decision, settle
from shared.services.unrecognized import note_unrecognized_error, observe_polled, unrecognized_details
from shared.settings import Settings

JITTER = 0.2


class PollInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: JobId
    wait_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)


class PollOutput(BaseModel):
    job_id: str
    wait_seconds: int = Field(ge=1)
    done: bool
    status: str
    polls: int


def backoff_seconds(settings: Settings, polls: int, rng: random.Random | None = None) -> float:
    """min_wait * factor^polls, +/- 20 % jitter so many jobs do not poll in step, kept within [min_wait, max_wait]."""
    low, high = settings.poll_min_wait_seconds, settings.poll_max_wait_seconds
    try:
        base = min(high, low * settings.poll_backoff_factor**polls)
    except OverflowError:  # a long-lived job's poll count can outgrow a float power
        base = high
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return max(float(low), min(high, base * spread))


def next_wait(rt: Runtime, job: JobRecord, polls: int, now: datetime) -> int:
    settings = rt.settings
    wait = backoff_seconds(settings, polls)
    if job.provider_estimate_seconds:
        ready_in = (job.created_at - now).total_seconds() + job.provider_estimate_seconds
        wait = max(wait, ready_in)  # the provider said when to look; looking earlier only costs a call
    until_deadline = (job.deadline_at - now).total_seconds()
    if job.status is not JobStatus.ARCHIVING:
        wait = min(wait, max(1.0, until_deadline + 1))
    return max(1, round(wait))


def poll_once(rt: Runtime, data: PollInput) -> PollOutput:
    job = rt.jobs.get(data.job_id)
    if job is None:
        logger.warning("poller found no job", job_id=data.job_id)
        return PollOutput(job_id=data.job_id, wait_seconds=1, done=True, status="missing", polls=data.polls)
    job, polled = _check(rt, job)
    polls = data.polls + (1 if polled else 0)
    if job.terminal:
        return PollOutput(job_id=job.id, wait_seconds=1, done=True, status=job.status.value, polls=polls)
    wait = next_wait(rt, job, polls, rt.clock())
    return PollOutput(job_id=job.id, wait_seconds=wait, done=False, status=job.status.value, polls=polls)


def _check(rt: Runtime, job: JobRecord) -> tuple[JobRecord, bool]:
    """Move the job on if it can be; returns the job and whether the provider was asked."""
    now = rt.clock()
    settings = rt.settings
    if job.terminal:
        return job, False
    if job.status is JobStatus.SUBMITTING:
        if job.handoff_at is None:
            # Not offered to any provider yet (waiting for dispatch, which owns it): nothing to ask anyone.
            return job, False
        if (now - job.handoff_at).total_seconds() < settings.submit_grace_seconds:
            return job, False
        return settle(rt.jobs, job, _interrupted), False
    if job.status is JobStatus.ARCHIVING:
        # Archiving is the archive function's; this only ends a job whose archive never finished.
        overdue = (now - job.updated_at).total_seconds() > settings.archive_grace_seconds
        return (settle(rt.jobs, job, _archive_overdue) if overdue else job), False
    if now >= job.deadline_at:
        return settle(rt.jobs, job, _deadline_passed), False
    if job.provider_task_id is None:  # cannot happen past `submitting`; never ask about no task
        return job, False
    if job.provider_estimate_seconds and now < job.created_at + timedelta(seconds=job.provider_estimate_seconds):
        return job, False  # the provider said when to look; asking earlier only costs a status call
    try:
        status = rt.provider(job.provider).status(job.provider_task_id)
    except ProviderError as err:
        if err.unrecognized:
            return note_unrecognized_error(rt, _reread(rt, job), err), True
        if err.kind is ErrorKind.REJECTED:
            error = JobError(code=ErrorCode.GENERATION_FAILED, message=err.message, provider_code=err.provider_code)
            return settle(rt.jobs, job, _fail_unless_done(error)), True
        logger.info("status check failed; will retry", provider=job.provider, kind=err.kind.value)
        return _reread(rt, job), True
    return observe_polled(rt, _reread(rt, job), status), True


def _reread(rt: Runtime, job: JobRecord) -> JobRecord:
    """The job as stored now: a callback may have moved it while the provider was being asked.

    Deciding from the read taken before the call is safe (writes are conditional), but when that read
    calls for no change, the poller would report and wait on a status the job has already left.
    """
    return rt.jobs.get(job.id) or job


def _interrupted(job: JobRecord) -> Change | None:
    if job.status is not JobStatus.SUBMITTING or job.handoff_at is None:
        return None
    attempt = Attempt(
        provider=job.provider,
        at=job.handoff_at,
        outcome=AttemptOutcome.INTERRUPTED,
        message="the dispatching function stopped before the provider's answer was recorded",
    )
    error = JobError(
        code=ErrorCode.SUBMIT_INTERRUPTED,
        message=f"we could not confirm whether {job.provider} accepted the job; no result will arrive. "
        "If the provider charged for it, its task can be found in the provider's console.",
    )
    return Change(JobStatus.FAILED, {"error": error, "attempts": (*job.attempts, attempt), "handoff_at": None})


def _archive_overdue(job: JobRecord) -> Change | None:
    if job.status is not JobStatus.ARCHIVING:
        return None
    error = JobError(
        code=ErrorCode.ARCHIVE_FAILED,
        message="the result could not be archived in time; the provider's result URLs were: "
        + ", ".join(job.result_urls),
    )
    return Change(JobStatus.FAILED, {"error": error})


def _deadline_passed(job: JobRecord) -> Change | None:
    if job.terminal or job.status is JobStatus.ARCHIVING:
        return None
    error = JobError(
        code=ErrorCode.DEADLINE_EXCEEDED,
        message="the provider did not finish before the deadline",
        details=unrecognized_details(job),
    )
    return Change(JobStatus.TIMED_OUT, {"error": error})


def _fail_unless_done(error: JobError) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.terminal or job.status is JobStatus.ARCHIVING:
            return None
        return Change(JobStatus.FAILED, {"error": error})

    return decide
