"""The API's objects as typed models.

Every model accepts fields this version does not know (the API grows: they are kept, readable as
attributes and in `model_extra`, and written back by `to_dict()`), and enumerations the API may extend
(statuses, error codes, providers) are plain strings, with the values known today as constants.
`to_dict()` gives the object as the API sent it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SUBMITTING = "submitting"
QUEUED = "queued"
RUNNING = "running"
ARCHIVING = "archiving"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
CANCELED = "canceled"

JOB_STATUSES = (SUBMITTING, QUEUED, RUNNING, ARCHIVING, SUCCEEDED, FAILED, TIMED_OUT, CANCELED)
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, TIMED_OUT, CANCELED})
PROVIDERS = ("vidgo", "kie", "aimlapi", "pixwith", "apimart")


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-ready data, with exactly the fields the API sent."""
        return self.model_dump(mode="json", exclude_unset=True)


class MotionControl(ApiModel):
    """Animate the character in `image_url` with the motion of the reference video `video_url`."""

    image_url: str
    video_url: str
    character_orientation: str | None = Field(default=None, description="`image` or `video`")
    keep_original_sound: bool | None = None


class JobRequest(ApiModel):
    """The request a job was made from, as the API echoes it."""

    provider: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None
    sound: bool | None = None
    quality: str | None = None
    first_frame_url: str | None = None
    last_frame_url: str | None = None
    cfg_scale: float | None = None
    num_outputs: int | None = None
    prompt_optimization: bool | None = None
    watermark: bool | None = None
    motion_control: MotionControl | None = None
    webhook_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class Output(ApiModel):
    """An archived video: a presigned `url` valid until `expires_at`, and its size and SHA-256."""

    url: str
    expires_at: datetime
    bytes: int
    sha256: str
    content_type: str


class EventOutput(ApiModel):
    """An archived video as events describe it: no download URL (read the job for a fresh one)."""

    index: int
    bytes: int
    sha256: str
    content_type: str


class JobError(ApiModel):
    """Why a job did not succeed. `code` is one of the values documented in the API reference (and more may come)."""

    code: str
    message: str
    provider_code: str | None = None
    details: dict[str, Any] | None = Field(
        default=None, description="More about the failure, e.g. the provider's last unrecognised answer."
    )


class Attempt(ApiModel):
    """One try at handing the job to a provider."""

    provider: str
    at: datetime
    outcome: str
    http_status: int | None = None
    error_code: str | None = None
    message: str | None = None
    retry_after_seconds: float | None = None


class Cost(ApiModel):
    amount: float
    unit: str
    estimated: bool
    basis: str


class Waiting(ApiModel):
    """Present while the job waits for a provider: why, for which one, and when it tries again."""

    reason: str
    provider: str | None = None
    next_attempt_at: datetime | None = None


class UnrecognizedAnswer(ApiModel):
    """The provider's latest answer the relay could not act on (redacted), and how many came in a row.

    The relay keeps waiting through such answers; the job fails only after many in a row or at its deadline.
    """

    consecutive: int
    total: int
    reason: str
    answer: str | None = None
    at: datetime


class _JobFields(ApiModel):
    id: str
    status: str
    provider: str
    provider_task_id: str | None = None
    request: JobRequest
    progress: int | None = None
    # Declared here for the API's field order; `Job` and `EventJob` narrow it.
    outputs: Sequence[Output | EventOutput] = Field(default_factory=list)
    error: JobError | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    cost: Cost | None = None
    completed_by: str | None = Field(default=None, description="`callback` or `poll`")
    provider_unrecognized: UnrecognizedAnswer | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    waiting: Waiting | None = None

    @property
    def terminal(self) -> bool:
        """The job has finished (succeeded, failed, timed out or canceled) and will not change again."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


class Job(_JobFields):
    """A job as its owner sees it (`GET /v1/jobs/{id}`)."""

    outputs: list[Output] = Field(default_factory=list)


class JobPage(ApiModel):
    """One page of `GET /v1/jobs`, newest first; `next_cursor` is absent on the last page."""

    items: list[Job]
    next_cursor: str | None = None


class EventJob(_JobFields):
    """The job inside an event: as `Job`, but its outputs carry no download URL."""

    outputs: list[EventOutput] = Field(default_factory=list)


class JobEvent(ApiModel):
    """One stored change of a job (`type` is `job.<status>`), as published and delivered to webhooks.

    Delivery is at least once: deduplicate on `id` (also the `webhook-id` header).
    """

    id: str
    type: str
    created_at: datetime
    data: EventJob


class Capabilities(ApiModel):
    """What one provider can do with a request (see `GET /v1/providers`)."""

    provider: str
    durations: list[int] = Field(default_factory=list)
    aspect_ratios: list[str] = Field(default_factory=list)
    aspect_ratio_with_image: bool = False
    sound: bool = False
    sound_requires_pro: bool = False
    qualities: list[str] = Field(default_factory=list)
    default_quality: str | None = None
    text_to_video: bool = False
    first_frame: bool = False
    last_frame: bool = False
    last_frame_requires_pro: bool = False
    last_frame_excludes_sound: bool = False
    negative_prompt: bool = False
    cfg_scale: bool = False
    cfg_scale_with_image: bool = False
    max_outputs: int = 1
    max_prompt_chars: int | None = None
    prompt_optimization: bool = False
    watermark: bool = False
    callbacks: bool = False
    signed_callbacks: bool = False
    notes: list[str] = Field(default_factory=list)


class Provider(ApiModel):
    """A provider, whether `auto` may route to it, its place in that order, and what it can do."""

    name: str
    enabled: bool
    routing_position: int | None = None
    capabilities: Capabilities


class Usage(ApiModel):
    """The caller's limits and what it used (`GET /v1/usage`); every field the API sends is kept."""

    active_jobs: int | None = None
    limits: dict[str, Any] | None = None
