"""From the table's stream to SNS: one event per stored status change.

The stream is the outbox, so an event exists only for a change that was stored. Event ids are
derived from the job id, version and status: a record delivered twice publishes the same id.
"""

from __future__ import annotations

from typing import Any

from shared.models.common import JobStatus
from shared.models.events import JobEvent, event_from_record
from shared.models.job import JobRecord
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime

INTERNAL_STATUSES = frozenset({JobStatus.SUBMITTING})


def job_from_image(new_image: dict[str, Any]) -> JobRecord | None:
    """The job a stream record's new image holds, or None when the item is not a job."""
    if new_image.get("entity", {}).get("S") != "job":
        return None
    return JobRepository.record_from_item(new_image)


def event_for_job(job: JobRecord, old_image: dict[str, Any] | None) -> JobEvent | None:
    """The event the job's stored change stands for, or None when its status did not change."""
    if job.status in INTERNAL_STATUSES:
        return None
    if old_image is not None and old_image.get("status", {}).get("S") == job.status.value:
        return None
    return event_from_record(job)


def event_for_change(new_image: dict[str, Any], old_image: dict[str, Any] | None) -> tuple[JobEvent, JobRecord] | None:
    """The event a stream record stands for, with its job; None when it stands for none."""
    job = job_from_image(new_image)
    if job is None:
        return None
    event = event_for_job(job, old_image)
    return None if event is None else (event, job)


def message_attributes(event: JobEvent, job: JobRecord) -> dict[str, str]:
    """The attributes subscription filter policies match on."""
    return {
        "type": event.type,
        "status": job.status.value,
        "provider": job.provider,
        "tenant_id": job.tenant_id,
        "has_webhook": "true" if job.request.webhook_url is not None else "false",
    }


def publish(rt: Runtime, event: JobEvent, job: JobRecord) -> str:
    return rt.event_publisher.publish(event.model_dump_json(), message_attributes(event, job))
