"""Provider answers the relay does not recognise never end a paid job on first sight.

A status answer an adapter cannot act on (an unknown status value, an unknown refusal, success without a
video URL, a shape we do not know) keeps the job waiting: the poller records it on the job as
`provider_unrecognized` (the answer redacted), emits `ProviderAnswersUnrecognized`, and asks again later.
Only `unrecognized_answer_limit` such answers in a row, or the job's deadline, end the job, with the last
answer in the error's details. Any recognised answer resets the run (see `transitions.decide_from_provider`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobError, JobRecord, UnrecognizedAnswer
from shared.observability import NAMESPACE, logger
from shared.providers.base import ProviderState, TaskStatus
from shared.providers.errors import ProviderError
from shared.runtime import Runtime
from shared.services.transitions import Change, Decision, decide_from_provider, settle

METRIC = "ProviderAnswersUnrecognized"


def observe_polled(rt: Runtime, job: JobRecord, status: TaskStatus) -> JobRecord:
    """Apply a polled status answer; an unrecognised one is counted instead of acted on."""
    if status.unrecognized is None:
        return settle(rt.jobs, job, decide_from_provider(status, "poll"))
    claimed_success = status.state is ProviderState.SUCCEEDED
    _note(rt, job, status.unrecognized, status.raw_status)
    decide = _count(
        status.unrecognized,
        status.answer,
        provider_code=status.raw_status,
        claimed_success=claimed_success,
        limit=rt.settings.unrecognized_answer_limit,
        now=rt.clock(),
        also=decide_from_provider(status, "poll"),
    )
    return settle(rt.jobs, job, decide)


def note_unrecognized_error(rt: Runtime, job: JobRecord, err: ProviderError) -> JobRecord:
    """A status check the provider answered with an error or a shape we do not know: counted, never final."""
    _note(rt, job, err.message, err.provider_code)
    decide = _count(
        err.message,
        err.answer,
        provider_code=err.provider_code,
        claimed_success=False,
        limit=rt.settings.unrecognized_answer_limit,
        now=rt.clock(),
    )
    return settle(rt.jobs, job, decide)


def unrecognized_details(job: JobRecord) -> dict[str, Any] | None:
    """For an error ending a job whose latest answers were unrecognised: what the provider last said."""
    record = job.provider_unrecognized
    if record is None or not record.consecutive:
        return None
    return {"reason": record.reason, "consecutive": record.consecutive, "answer": record.answer}


def _note(rt: Runtime, job: JobRecord, reason: str, provider_code: str | None) -> None:
    logger.warning("unrecognised provider answer", provider=job.provider, reason=reason, provider_code=provider_code)
    with single_metric(
        name=METRIC, unit=MetricUnit.Count, value=1, namespace=NAMESPACE, default_dimensions={"provider": job.provider}
    ):
        pass


def _count(
    reason: str,
    answer: str | None,
    *,
    provider_code: str | None,
    claimed_success: bool,
    limit: int,
    now: datetime,
    also: Decision | None = None,
) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.terminal or job.status is JobStatus.ARCHIVING:
            return None
        change = also(job) if also is not None else None
        fields = dict(change.fields) if change is not None else {}
        previous = job.provider_unrecognized
        record = UnrecognizedAnswer(
            consecutive=(previous.consecutive if previous else 0) + 1,
            total=(previous.total if previous else 0) + 1,
            reason=reason,
            answer=answer,
            at=now,
        )
        fields["provider_unrecognized"] = record
        if record.consecutive < limit:
            return Change(change.status if change is not None else None, fields)
        error = JobError(
            code=ErrorCode.RESULT_MISSING if claimed_success else ErrorCode.PROVIDER_UNRECOGNIZED,
            message=f"{job.provider} answered {record.consecutive} times in a row in a way the relay does not "
            f"recognise ({reason}); the provider may still hold the task",
            provider_code=provider_code,
            details={"reason": reason, "consecutive": record.consecutive, "answer": answer},
        )
        return Change(JobStatus.FAILED, {**fields, "error": error})

    return decide
