"""How fast each provider may be handed new tasks, and how many it may hold at once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.models.common import ProviderName


class ProviderLimit(BaseModel):
    """`submits_per_window` new tasks in any `window_seconds`, and at most `max_in_flight` unfinished tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    submits_per_window: int = Field(ge=1, le=1000)  # the window's log of task times is one item
    window_seconds: float = Field(gt=0, le=3600)
    max_in_flight: int = Field(ge=1, le=1_000_000)

    @property
    def interval_seconds(self) -> float:
        """The steady spacing between two new tasks."""
        return self.window_seconds / self.submits_per_window


# Kie documents 20 new tasks per 10 s per account (excess refused with 429, not queued) and "typically 100+"
# concurrent tasks. The others publish no submit limit: 10 per 10 s and 50 in flight are conservative guesses,
# to be raised per account with `provider_limits` once the provider confirms more.
KIE_LIMIT = ProviderLimit(submits_per_window=20, window_seconds=10, max_in_flight=100)
UNPUBLISHED_LIMIT = ProviderLimit(submits_per_window=10, window_seconds=10, max_in_flight=50)

DEFAULT_PROVIDER_LIMITS: dict[ProviderName, ProviderLimit] = {
    "vidgo": UNPUBLISHED_LIMIT,
    "kie": KIE_LIMIT,
    "aimlapi": UNPUBLISHED_LIMIT,
    "pixwith": UNPUBLISHED_LIMIT,
    "apimart": UNPUBLISHED_LIMIT,
}
