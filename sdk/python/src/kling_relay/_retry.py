"""When a failed request is tried again, and after how long."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from kling_relay.errors import APIConnectionError, APIStatusError, DownloadError, KlingRelayError

# Statuses worth another try: a timeout, throttling, and the server-side failures that pass. A 409 is
# retried only as `conflict` (another writer came first); its other codes are final answers.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Codes under those statuses that another try cannot fix.
FINAL_CODES = frozenset({"budget_exceeded", "provider_rejected", "configuration_error"})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    return parse_retry_after(headers.get("retry-after"))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; an API's `Retry-After` is honoured as given.

    `max_retries` counts the tries after the first. A `Retry-After` longer than `max_retry_after` is
    not slept through: the error is raised at once, carrying `retry_after`, for the caller to schedule.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def retryable(self, error: KlingRelayError) -> bool:
        if isinstance(error, APIConnectionError):
            return True
        if isinstance(error, DownloadError):  # the output's storage, not the API
            return error.status_code in RETRYABLE_STATUSES
        if isinstance(error, APIStatusError):
            if error.status_code == 409:
                return error.code == "conflict"
            return error.status_code in RETRYABLE_STATUSES and error.code not in FINAL_CODES
        return False

    def delay(self, retries_done: int, error: KlingRelayError) -> float | None:
        """Seconds to wait before the next try, or None when the error is final or the tries are spent."""
        if retries_done >= self.max_retries or not self.retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        backoff = min(self.max_delay, self.initial_delay * 2.0**retries_done)
        # Up to a quarter less, so clients that failed together do not all come back together.
        return backoff * (1 - 0.25 * self.rand())
