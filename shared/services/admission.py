"""Admission: a new job takes an active slot and reserves its estimated credits under its tenant's caps;
a finished job gives them back (settled to what it cost). Over a cap, nothing is recorded."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.errors import BudgetExceededError, TooManyActiveJobsError, TooManyRequestsError
from shared.models.job import JobRecord
from shared.observability import logger
from shared.repository.jobs import AdmissionRefused, CreateResult, IdempotencyClaim
from shared.repository.keys import TenantRecord
from shared.repository.tenant_usage import Admission, month_of
from shared.runtime import Runtime

# No job can be predicted to end at a given moment; this is how soon a retry is worth trying.
ACTIVE_RETRY_AFTER_SECONDS = 30


def admission_for(job: JobRecord, tenant: TenantRecord | None) -> Admission:
    """What the job takes from its tenant, under the tenant's caps as stored now."""
    return Admission(
        tenant_id=job.tenant_id,
        month=month_of(job.created_at),
        credits=job.reserved_credits or 0.0,
        max_active_jobs=tenant.max_active_jobs if tenant else None,
        monthly_credits=tenant.monthly_credits if tenant else None,
    )


def create_admitted(rt: Runtime, job: JobRecord, claim: IdempotencyClaim | None) -> CreateResult:
    """Store the job with its admission in one transaction; a cap it would exceed is a 429 and nothing is stored."""
    admission = admission_for(job, rt.keys.get_tenant(job.tenant_id))
    active = rt.tenant_usage.active(job.tenant_id) if admission.max_active_jobs is not None else None
    refusal = _refused_before_writing(admission, active, replay=claim is not None)
    if refusal is None:
        try:
            return rt.jobs.create(job, claim, admission)
        except AdmissionRefused as refused:
            refusal = refused.limit
            active = None  # read again: the counter moved since
    logger.info("admission refused", tenant_id=job.tenant_id, limit=refusal)
    raise _limit_error(rt, admission, refusal, active)


def _refused_before_writing(admission: Admission, active: int | None, *, replay: bool) -> str | None:
    """Caps no transaction could pass, and a tenant full as just read (a tenant flooding the API at its cap costs
    reads, not failed transactions). The transaction's conditions stay the authority; this only refuses early."""
    if admission.max_active_jobs == 0:
        return "max_active_jobs"
    if admission.monthly_credits is not None and admission.credits > admission.monthly_credits:
        return "monthly_credits"
    # A request with an Idempotency-Key may be a replay, answered with its job even at the cap: the transaction
    # decides.
    full = active is not None and admission.max_active_jobs is not None and active >= admission.max_active_jobs
    return "max_active_jobs" if full and not replay else None


def _limit_error(rt: Runtime, admission: Admission, limit: str, active: int | None) -> TooManyRequestsError:
    if limit == "max_active_jobs":
        return TooManyActiveJobsError(
            f"the tenant already has its maximum of {admission.max_active_jobs} active jobs",
            details={
                "limit": "max_active_jobs",
                "max_active_jobs": admission.max_active_jobs,
                "active_jobs": active if active is not None else rt.tenant_usage.active(admission.tenant_id),
            },
            retry_after=ACTIVE_RETRY_AFTER_SECONDS,
        )
    usage = rt.tenant_usage.month(admission.tenant_id, admission.month)
    return BudgetExceededError(
        f"the job's estimated {admission.credits:g} credits exceed what is left of the tenant's monthly budget",
        details={
            "limit": "monthly_credits",
            "monthly_credits": admission.monthly_credits,
            "credits_committed": usage.credits_committed,
            "job_credits": admission.credits,
            "month": admission.month,
        },
        retry_after=seconds_to_next_month(rt.clock()),
    )


def seconds_to_next_month(now: datetime) -> int:
    now = now.astimezone(UTC)
    start = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return max(1, int((start - now).total_seconds()))


def settle_finished(rt: Runtime, job: JobRecord) -> bool:
    """A job stored as terminal gives back its slot and settles its credits, once."""
    if not job.terminal:
        return False
    # Every terminal image is tried, not only the first: the marker makes all but one a no-op.
    settled = rt.tenant_usage.settle(job)
    if settled:
        logger.info("admission settled", job_id=job.id, tenant_id=job.tenant_id)
    return settled
