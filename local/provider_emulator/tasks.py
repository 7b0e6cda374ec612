"""Emulated provider tasks: their timeline, what a status answer sees, and the control-API view.

A task is queued for the first fifth of its `job_seconds`, then running with progress rising linearly,
and ends when its time is up (or when forced through the control API). The end state is decided once,
at that moment, so faults added while a task runs still apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.models.common import ProviderName

QUEUED_SHARE = 0.2


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class CallbackAttempt(BaseModel):
    """One callback POST (or a deliberately dropped one), as recorded for the control API."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    provider: ProviderName
    url: str
    label: str  # genuine | duplicate | stale | forged:<how> | dropped
    attempt: int  # 1 for the first try of a delivery, 2.. for retries
    sent_at: float
    status_code: int | None = None
    error: str | None = None
    delivered: bool = False
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None


@dataclass
class Task:
    provider: ProviderName
    task_id: str
    file_key: str
    model: str
    prompt: str
    submitted: dict[str, Any]
    callback_url: str | None
    num_outputs: int
    created: float
    job_seconds: float
    seconds: int = 5  # the video's length: the requested duration, or a motion control reference's
    variant: int = 0  # which of the provider's documented answer shapes this task answers in
    status_queries: int = 0
    downloads: int = 0
    finished: float | None = None
    outcome: Phase | None = None
    fail_message: str | None = None
    end_progress: int = 0
    result_bytes: int | None = None
    callback_attempts: list[CallbackAttempt] = field(default_factory=list)

    @property
    def deadline(self) -> float:
        return self.created + self.job_seconds

    def progress_at(self, now: float) -> tuple[Phase, int, float]:
        """(phase, progress 0-100, fraction of the job time elapsed) at `now`."""
        if self.outcome is not None:
            return self.outcome, 100 if self.outcome is Phase.SUCCEEDED else self.end_progress, 1.0
        fraction = (now - self.created) / self.job_seconds if self.job_seconds > 0 else 1.0
        fraction = max(0.0, fraction)
        if fraction < QUEUED_SHARE:
            return Phase.QUEUED, 0, fraction
        running = (fraction - QUEUED_SHARE) / (1 - QUEUED_SHARE)
        return Phase.RUNNING, max(1, min(99, int(running * 100))), fraction


@dataclass(frozen=True)
class TaskSnapshot:
    """What one status answer or callback body is rendered from, taken under the emulator's lock."""

    provider: ProviderName
    task_id: str
    model: str
    submitted: dict[str, Any]
    phase: Phase
    progress: int
    fraction: float
    created: float
    finished: float | None
    job_seconds: float
    fail_message: str | None
    result_urls: tuple[str, ...]
    seconds: int = 5
    variant: int = 0


class TaskView(BaseModel):
    """A task as `GET /_control/tasks` shows it."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    task_id: str
    model: str
    state: Phase
    provider_status: str | int
    progress: int
    prompt: str
    submitted: dict[str, Any]
    callback_url: str | None
    created_at: float
    job_seconds: float
    finished_at: float | None
    fail_message: str | None
    result_urls: list[str]
    result_bytes: int | None
    status_queries: int
    downloads: int
    callback_attempts: list[CallbackAttempt]
    variant: int = 0
