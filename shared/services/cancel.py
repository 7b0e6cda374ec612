"""Canceling a job: stop tracking it and mark it `canceled`.

None of the five providers documents a cancel call, so a task already running at the provider
may still finish (and be charged); its result is not archived.
"""

from __future__ import annotations

from shared.errors import JobTerminalError
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobError, JobRecord
from shared.observability import logger
from shared.runtime import Runtime
from shared.services.transitions import Change, settle


def cancel_job(rt: Runtime, tenant_id: str, job_id: str) -> JobRecord:
    job = rt.jobs.get_for_tenant(tenant_id, job_id)
    if job.terminal:
        raise JobTerminalError(f"job {job_id} is already {job.status.value}", details={"status": job.status.value})
    error = JobError(code=ErrorCode.CANCELED, message="canceled by its owner")

    def decide(current: JobRecord) -> Change | None:
        return None if current.terminal else Change(JobStatus.CANCELED, {"error": error})

    job = settle(rt.jobs, job, decide)
    if job.status is not JobStatus.CANCELED:
        raise JobTerminalError(
            f"job {job_id} finished as {job.status.value} first", details={"status": job.status.value}
        )
    stop_tracking(rt, job.id)
    return job


def stop_tracking(rt: Runtime, job_id: str) -> None:
    if not rt.poller.stop(job_id, cause="job canceled"):
        # Already finished or never started: the poller would end on its own at the next check.
        logger.info("poller already stopped", job_id=job_id)
