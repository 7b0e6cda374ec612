"""A job as stored (`JobRecord`) and as shown to its owner (`JobView`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.models.common import JobId, JobStatus, ProviderName, TenantId, Timestamp
from shared.models.request import JobRequest


class ErrorCode(StrEnum):
    """Why a job did not succeed, in words an app can branch on."""

    PROVIDER_REJECTED = "provider_rejected"  # the provider refused the request (4xx)
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # every provider tried was down, throttled or out of credits
    NO_PROVIDER_AVAILABLE = "no_provider_available"  # no provider could take the job before its deadline
    GENERATION_FAILED = "generation_failed"  # the provider ran the job and reported failure
    PROVIDER_CANCELED = "provider_canceled"  # the provider canceled the task on its side
    SUBMIT_INTERRUPTED = "submit_interrupted"  # we never learned whether the provider accepted it
    RESULT_MISSING = "result_missing"  # success reported, again and again, with no result URL we recognise
    PROVIDER_UNRECOGNIZED = "provider_unrecognized"  # the provider kept answering in a way we do not recognise
    RESULT_EXPIRED = "result_expired"  # the provider's result URL was gone when we fetched it
    RESULT_INVALID = "result_invalid"  # wrong content type, too large, truncated, blocked address
    ARCHIVE_FAILED = "archive_failed"  # storing the result failed after retries
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELED = "canceled"


class JobError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    provider_code: str | None = None
    details: dict[str, Any] | None = Field(
        default=None, description="More about the failure, e.g. the provider's last unrecognised answer."
    )


class UnrecognizedAnswer(BaseModel):
    """The provider's latest answer the relay could not act on, and how many came in a row."""

    model_config = ConfigDict(frozen=True)

    consecutive: int = Field(ge=0, description="Unrecognised answers in a row; 0 once a recognised one came.")
    total: int = Field(ge=1, description="Unrecognised answers so far.")
    reason: str
    answer: str | None = Field(
        default=None, description="The answer as received, with keys, tokens and signed URL queries removed."
    )
    at: Timestamp


class StoredOutput(BaseModel):
    """An archived result in our bucket. The presigned URL is made when the job is read."""

    model_config = ConfigDict(frozen=True)

    key: str
    bytes: int = Field(ge=0)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    content_type: str


CompletionSource = Literal["callback", "poll"]


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # permanent: the provider said no
    UNAVAILABLE = "unavailable"  # retryable: throttled, down, out of credits, timed out
    INTERRUPTED = "interrupted"  # we died mid-call; outcome unknown


class Attempt(BaseModel):
    """One try at handing the job to a provider."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    at: Timestamp
    outcome: AttemptOutcome
    http_status: int | None = None
    error_code: str | None = None
    message: str | None = None
    retry_after_seconds: float | None = None


class WaitReason(StrEnum):
    RATE_LIMITED = "rate_limited"  # the provider's submit rate is spent for now (our pacing)
    AT_CAPACITY = "at_capacity"  # the provider holds as many unfinished tasks as it takes
    PAUSED = "paused"  # the provider asked us (429 + Retry-After) to send nothing until then
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # the provider answered 429/455/5xx/timeout/no credits


class Waiting(BaseModel):
    """Why a job is not with a provider yet, and when it will be offered again."""

    model_config = ConfigDict(frozen=True)

    reason: WaitReason
    provider: ProviderName = Field(
        description="The provider whose submit slot the job booked, else the first candidate that could not take it."
    )
    next_attempt_at: Timestamp


class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: float = Field(ge=0)
    unit: Literal["provider_credits"] = "provider_credits"
    estimated: bool = True
    basis: str


class JobRecord(BaseModel):
    """The DynamoDB job item, minus its keys. `version` guards every conditional write."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: JobId
    tenant_id: TenantId
    status: JobStatus
    version: int = Field(ge=0)
    provider: ProviderName
    provider_task_id: str | None = None
    request: JobRequest
    progress: int | None = Field(default=None, ge=0, le=100)
    result_urls: tuple[str, ...] = ()
    outputs: tuple[StoredOutput, ...] = ()
    error: JobError | None = None
    attempts: tuple[Attempt, ...] = ()
    cost: Cost | None = None
    # Credits taken from the tenant's monthly budget when the job was admitted; None for jobs admitted before
    # tenants had budgets (nothing of theirs is settled).
    reserved_credits: float | None = Field(default=None, ge=0)
    completed_by: CompletionSource | None = None  # how the provider's outcome reached us
    provider_estimate_seconds: int | None = None
    provider_unrecognized: UnrecognizedAnswer | None = None
    waiting: Waiting | None = None
    # Set just before a provider is asked to take the job and cleared when its answer is recorded: while set,
    # that provider may hold a task for the job, so the job is never offered again (see services/dispatch.py).
    handoff_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None = None
    deadline_at: Timestamp

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    def public_fields(self) -> dict[str, Any]:
        """What the job's owner may see of it, but for its outputs (views and events show those their way)."""
        return {
            "id": self.id,
            "status": self.status,
            "provider": self.provider,
            "provider_task_id": self.provider_task_id,
            "request": self.request,
            "progress": self.progress,
            "error": self.error,
            "attempts": list(self.attempts),
            "cost": self.cost,
            "completed_by": self.completed_by,
            "provider_unrecognized": self.provider_unrecognized,
            "waiting": self.waiting if self.status is JobStatus.SUBMITTING else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
            "metadata": dict(self.request.metadata),
        }


class OutputView(BaseModel):
    url: str = Field(description="Presigned download URL, valid until `expires_at`.")
    expires_at: Timestamp
    bytes: int
    sha256: str
    content_type: str


class JobView(BaseModel):
    """A job as its owner sees it."""

    id: str
    status: JobStatus
    provider: ProviderName
    provider_task_id: str | None
    request: JobRequest
    progress: int | None
    outputs: list[OutputView]
    error: JobError | None
    attempts: list[Attempt]
    cost: Cost | None
    completed_by: CompletionSource | None = Field(
        default=None, description="`callback` or `poll`: how the provider's outcome reached us."
    )
    provider_unrecognized: UnrecognizedAnswer | None = Field(
        default=None, description="The provider's latest answer the relay did not recognise (the job kept waiting)."
    )
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None
    metadata: dict[str, str]
    waiting: Waiting | None = Field(
        default=None,
        description="While `submitting`: no provider could take the job yet; why, and when it is offered again.",
    )


class JobPage(BaseModel):
    items: list[JobView]
    next_cursor: str | None = None
