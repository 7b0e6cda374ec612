"""Job events: one per stored status change, published on SNS and delivered to app webhooks."""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from shared.models.common import JobStatus, ProviderName, Timestamp
from shared.models.job import Attempt, CompletionSource, Cost, JobError, JobRecord
from shared.models.request import JobRequest

EventId = Annotated[str, StringConstraints(pattern=r"^evt_[0-9a-f]{32}$")]


class EventOutput(BaseModel):
    """An archived output without its presigned URL (fetch the job for a fresh one)."""

    index: int
    bytes: int
    sha256: str
    content_type: str


class EventJob(BaseModel):
    id: str
    status: JobStatus
    provider: ProviderName
    provider_task_id: str | None
    request: JobRequest
    progress: int | None
    outputs: list[EventOutput]
    error: JobError | None
    attempts: list[Attempt]
    cost: Cost | None
    completed_by: CompletionSource | None = None
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None
    metadata: dict[str, str]


class JobEvent(BaseModel):
    id: EventId
    type: str
    created_at: Timestamp
    data: EventJob


def event_id(job_id: str, version: int, status: JobStatus) -> str:
    """Deterministic: a re-delivered stream record yields the same id, so apps can dedupe on it."""
    digest = hashlib.sha256(f"{job_id}:{version}:{status.value}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def event_from_record(job: JobRecord) -> JobEvent:
    data = EventJob(
        **job.public_fields(),
        outputs=[
            EventOutput(index=i, bytes=o.bytes, sha256=o.sha256, content_type=o.content_type)
            for i, o in enumerate(job.outputs)
        ],
    )
    return JobEvent(
        id=event_id(job.id, job.version, job.status),
        type=f"job.{job.status.value}",
        created_at=job.updated_at,
        data=data,
    )
