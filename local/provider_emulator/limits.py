"""Submit limits per provider, as the provider itself enforces them: new tasks per rolling window, and
tasks in flight (submitted, not yet ended).

Only accepted submits take a slot: a request refused for any reason (auth, fault, validation, or a
limit) uses none. The window is rolling: at most `submits_per_window` tasks are accepted in any span of
`window_seconds`. The limiter reads its own clock, injectable so tests roll windows without sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.common import PROVIDER_NAMES, ProviderName


class ProviderLimit(BaseModel):
    """One provider's limits; either part may be absent, not both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    submits_per_window: int | None = Field(default=None, ge=1, le=1_000_000)
    window_seconds: float | None = Field(default=None, gt=0, le=86_400)
    max_concurrent: int | None = Field(default=None, ge=1, le=1_000_000)
    # No provider documents a Retry-After on its rate-limit answer; on, the refusal carries one (the
    # seconds until a window slot frees), for clients that honour it.
    retry_after: bool = False

    @model_validator(mode="after")
    def _complete(self) -> ProviderLimit:
        if (self.submits_per_window is None) != (self.window_seconds is None):
            raise ValueError("submits_per_window and window_seconds go together")
        if self.submits_per_window is None and self.max_concurrent is None:
            raise ValueError(
                "set submits_per_window with window_seconds, max_concurrent, or both (null removes the limit)"
            )
        return self


# Kie: "20 new generation requests per 10 seconds", "typically 100+ concurrent tasks", excess gets 429.
KIE_DOCUMENTED_LIMIT = ProviderLimit(submits_per_window=20, window_seconds=10, max_concurrent=100)


@dataclass(frozen=True)
class Refusal:
    """Why a submit was refused, for the provider to word in its own style."""

    kind: Literal["rate", "concurrency"]
    message: str
    retry_after: int | None  # whole seconds, only when the limit asks for the header


class SubmitLimiter:
    """Accepted-submit times and in-flight tasks per provider. Not locked: the engine's lock guards it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._accepted: dict[ProviderName, deque[float]] = {name: deque() for name in PROVIDER_NAMES}
        self._in_flight: dict[ProviderName, set[str]] = {name: set() for name in PROVIDER_NAMES}

    def reset(self) -> None:
        for times in self._accepted.values():
            times.clear()
        for tasks in self._in_flight.values():
            tasks.clear()

    def in_flight(self, provider: ProviderName) -> frozenset[str]:
        return frozenset(self._in_flight[provider])

    def refusal(self, provider: ProviderName, limit: ProviderLimit | None) -> Refusal | None:
        """The reason a new task of this provider would be refused now, or None if it may be accepted."""
        if limit is None:
            return None
        if limit.max_concurrent is not None and len(self._in_flight[provider]) >= limit.max_concurrent:
            return Refusal("concurrency", f"Too many tasks in progress: at most {limit.max_concurrent} at once", None)
        if limit.submits_per_window is None or limit.window_seconds is None:
            return None
        now = self.clock()
        times = self._accepted[provider]
        _forget_before(times, now - limit.window_seconds)
        if len(times) < limit.submits_per_window:
            return None
        wait = times[0] + limit.window_seconds - now
        return Refusal(
            "rate",
            f"Too many requests: at most {limit.submits_per_window} new tasks per {limit.window_seconds:g} s",
            max(1, _ceil(wait)) if limit.retry_after else None,
        )

    def accepted(self, provider: ProviderName, task_id: str, limit: ProviderLimit | None) -> None:
        """Record an accepted task: one window slot from now, and in flight until `ended`."""
        self._in_flight[provider].add(task_id)
        times = self._accepted[provider]
        if limit is None or limit.window_seconds is None:
            times.clear()  # no window to count against; a limit set later starts counting then
            return
        now = self.clock()
        _forget_before(times, now - limit.window_seconds)
        times.append(now)

    def ended(self, provider: ProviderName, task_id: str) -> None:
        self._in_flight[provider].discard(task_id)


LimitValue = ProviderLimit | Mapping[str, object] | None
LimitsInput = Mapping[str, LimitValue] | Mapping[ProviderName, LimitValue]


def parse_limits(limits: LimitsInput) -> dict[ProviderName, ProviderLimit]:
    """Limits given in code (`ProviderEmulator(limits=...)`): provider name -> limit; None means none."""
    parsed: dict[ProviderName, ProviderLimit] = {}
    for name, value in limits.items():
        provider = next((known for known in PROVIDER_NAMES if known == name), None)
        if provider is None:
            raise ValueError(f"limits: unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}")
        if value is not None:
            parsed[provider] = value if isinstance(value, ProviderLimit) else ProviderLimit.model_validate(value)
    return parsed


def _forget_before(times: deque[float], cutoff: float) -> None:
    while times and times[0] <= cutoff:
        times.popleft()


def _ceil(seconds: float) -> int:
    whole = int(seconds)
    return whole if whole >= seconds else whole + 1
