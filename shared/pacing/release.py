"""Giving back a job's place in flight once its provider task has ended, however it ended."""

from __future__ import annotations

from shared.models.common import JobStatus, ProviderName
from shared.models.job import JobRecord
from shared.runtime import Runtime

# The provider's task is over once the job is archiving (the provider finished) or final.
TASK_ENDED = frozenset({JobStatus.ARCHIVING, *(status for status in JobStatus if status.terminal)})


def providers_touched(job: JobRecord) -> list[ProviderName]:
    """Every provider the job may hold a place at: its own and every one it was offered to."""
    names: list[ProviderName] = [job.provider]
    for attempt in job.attempts:
        if attempt.provider not in names:
            names.append(attempt.provider)
    return names


def release_ended_task(rt: Runtime, job: JobRecord) -> int:
    """Release the job's places when its task has ended (idempotent); how many were still held."""
    if job.status not in TASK_ENDED:
        return 0
    return sum(rt.pacer.release(name, job.id) for name in providers_touched(job))
