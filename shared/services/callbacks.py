"""Provider callbacks: verify, then treat the body only as a hint and re-read the provider.

Checks, in order, each failing closed: body size; a provider that sends callbacks; the token,
bound to the job and the provider it was handed to (constant time); the job exists and belongs to
that provider; the provider's own signature where configured (Kie: HMAC over task id and timestamp,
inside a time window); the body names the job's task, and no other job holds that task (checked
before asking the provider, and again, atomically, when the job records it). Then the task status is
read from the provider's API with our key, and only that answer moves the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import (
    CallbackRejectedError,
    NotFoundError,
    PayloadTooLargeError,
    TaskClaimedError,
    UnauthorizedError,
)
from shared.models.common import PROVIDER_NAMES, JobStatus
from shared.models.job import JobRecord
from shared.observability import logger
from shared.providers.errors import ProviderError
from shared.providers.registry import capabilities
from shared.runtime import Runtime
from shared.services.transitions import observe


class CallbackResult(StrEnum):
    APPLIED = "applied"  # the provider's answer moved the job (or confirmed where it is)
    IGNORED = "ignored"  # the job had already finished
    DEFERRED = "deferred"  # the provider could not be asked now; polling will settle it


@dataclass(frozen=True)
class CallbackOutcome:
    result: CallbackResult
    job: JobRecord


def handle_callback(
    rt: Runtime,
    provider: str,
    job_id: str,
    token: str | None,
    body: bytes,
    headers: Mapping[str, str],
) -> CallbackOutcome:
    if len(body) > rt.settings.max_callback_bytes:
        raise PayloadTooLargeError(f"callback bodies are limited to {rt.settings.max_callback_bytes} bytes")
    if provider not in PROVIDER_NAMES or not capabilities(provider).callbacks:
        raise CallbackRejectedError("unknown_provider", status_code=404)
    if not rt.signing_keys().callback_token_valid(job_id, provider, token):
        raise CallbackRejectedError("bad_token")
    job = rt.jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    if job.provider != provider:
        raise CallbackRejectedError("wrong_provider")

    adapter = rt.provider(job.provider)
    adapter.verify_callback(body, headers, now=rt.clock().timestamp())
    hint = adapter.parse_callback(body, headers)
    if job.provider_task_id is not None and hint.task_id != job.provider_task_id:
        raise CallbackRejectedError("wrong_task")
    if job.provider_task_id is None and rt.jobs.task_holder(job.provider, hint.task_id) not in (None, job.id):
        raise CallbackRejectedError("task_claimed")

    if job.terminal:
        return CallbackOutcome(CallbackResult.IGNORED, job)
    if job.status is JobStatus.ARCHIVING:
        return CallbackOutcome(CallbackResult.IGNORED, job)
    try:
        status = adapter.status(hint.task_id, timeout=rt.settings.callback_recheck_timeout)
    except ProviderError as err:
        logger.info("callback status re-read failed; polling will settle", provider=provider, kind=err.kind.value)
        return CallbackOutcome(CallbackResult.DEFERRED, job)
    if status.task_id != hint.task_id:
        raise UnauthorizedError("the provider's status answer names another task")
    job = rt.jobs.get(job_id) or job
    try:
        return CallbackOutcome(CallbackResult.APPLIED, observe(rt.jobs, job, status, "callback"))
    except TaskClaimedError:
        # Another job recorded the task between the check above and this write; nothing was stored.
        raise CallbackRejectedError("task_claimed") from None
