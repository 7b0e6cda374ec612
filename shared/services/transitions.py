"""Job transitions: turning what a provider reports, or any other decision, into one conditional stored change.

Every change is decided from the job as last read and written conditionally; when another writer
got there first, the job is re-read and the decision made again. So duplicate, late and
out-of-order reports are no-ops, and a poll racing a webhook archives once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import NotFoundError, StaleVersionError
from shared.lifecycle import can_transition
from shared.models.common import JobStatus
from shared.models.job import CompletionSource, Cost, ErrorCode, JobError, JobRecord
from shared.providers.base import ProviderState, TaskStatus
from shared.repository.jobs import JobRepository

MAX_RACES = 5
# Far above any provider's credit price, far below what a DynamoDB number holds.
MAX_CREDITS = 1e12


@dataclass(frozen=True)
class Change:
    status: JobStatus | None = None
    fields: dict[str, Any] = field(default_factory=dict)


Decision = Callable[[JobRecord], Change | None]


def settle(jobs: JobRepository, job: JobRecord, decide: Decision) -> JobRecord:
    """Apply `decide(job)`; if the job changed meanwhile, re-read it and decide again."""
    for _ in range(MAX_RACES):
        change = decide(job)
        if change is None:
            return job
        try:
            if change.status is None:
                return jobs.update(job, **change.fields)
            return jobs.transition(job, change.status, **change.fields)
        except StaleVersionError:
            fresh = jobs.get(job.id)
            if fresh is None:
                raise NotFoundError(f"job {job.id} disappeared") from None
            job = fresh
    raise StaleVersionError(f"job {job.id} kept changing; giving up after {MAX_RACES} tries")


def reported_cost(job: JobRecord, credits: float) -> Cost | None:
    """The provider's own figure, when it is one a number field can hold (else the estimate stays)."""
    amount = round(credits, 6)
    if not 0 <= amount <= MAX_CREDITS:
        return None
    return Cost(amount=amount, estimated=False, basis=f"reported by {job.provider}")


def decide_from_provider(status: TaskStatus, source: CompletionSource) -> Decision:
    """The job change a provider's (verified) task status calls for, if any.

    `source` says how the status reached us; it is recorded when the report finishes the provider's
    part of the job (archiving or failed), as `completed_by`.
    """

    def decide(job: JobRecord) -> Change | None:
        if job.terminal or job.status is JobStatus.ARCHIVING:
            return None
        fields: dict[str, Any] = {}
        if job.provider_task_id is None:
            fields["provider_task_id"] = status.task_id
        elif job.provider_task_id != status.task_id:
            return None
        if status.credits_used is not None and (job.cost is None or job.cost.estimated):
            cost = reported_cost(job, status.credits_used)
            if cost is not None:
                fields["cost"] = cost

        run = job.provider_unrecognized
        if status.unrecognized is None and run is not None and run.consecutive:
            # A recognised answer ends the run of unrecognised ones.
            fields["provider_unrecognized"] = run.model_copy(update={"consecutive": 0})

        # An answer we cannot act on is never final (shared/services/unrecognized.py counts them).
        terminal = None if status.unrecognized else _terminal_change(job, status)
        if terminal is not None:
            return Change(terminal.status, {**fields, **terminal.fields, "completed_by": source})

        target = {ProviderState.QUEUED: JobStatus.QUEUED, ProviderState.RUNNING: JobStatus.RUNNING}.get(status.state)
        if target is None and job.status is JobStatus.SUBMITTING:
            # The provider reported on the task (an unknown status is still a task it holds), so it
            # accepted the job; left in `submitting`, the poller would fail it as interrupted.
            target = JobStatus.QUEUED
        if status.progress is not None and (job.progress is None or status.progress > job.progress):
            fields["progress"] = status.progress
        if target is not None and target is not job.status and can_transition(job.status, target):
            return Change(target, fields)
        return Change(None, fields) if fields else None

    return decide


def _terminal_change(job: JobRecord, status: TaskStatus) -> Change | None:
    provider = job.provider
    if status.state is ProviderState.SUCCEEDED:
        if not status.result_urls:
            error = JobError(
                code=ErrorCode.RESULT_MISSING,
                message=f"{provider} reported success without a result URL",
                provider_code=status.raw_status,
            )
            return Change(JobStatus.FAILED, {"error": error})
        return Change(JobStatus.ARCHIVING, {"result_urls": status.result_urls, "progress": 100})
    if status.state is ProviderState.FAILED:
        error = JobError(
            code=ErrorCode.GENERATION_FAILED,
            message=status.error_message or f"{provider} reported that the generation failed",
            provider_code=status.error_code or status.raw_status,
        )
        return Change(JobStatus.FAILED, {"error": error})
    if status.state is ProviderState.CANCELED:
        error = JobError(
            code=ErrorCode.PROVIDER_CANCELED,
            message=status.error_message or f"{provider} canceled the task",
            provider_code=status.raw_status,
        )
        return Change(JobStatus.FAILED, {"error": error})
    return None


def observe(jobs: JobRepository, job: JobRecord, status: TaskStatus, source: CompletionSource) -> JobRecord:
    return settle(jobs, job, decide_from_provider(status, source))
