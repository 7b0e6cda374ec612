"""When a failed delivery to an app's webhook is tried again (about a day in all, as Svix does)."""

from __future__ import annotations

# Delay before attempt n+1 after attempt n failed (attempt 1 is immediate).
RETRY_DELAYS_SECONDS: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_DELIVERY_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1  # the deliver queue's maxReceiveCount
# SQS caps a message's visibility timeout at 12 hours, and retention must outlive the schedule.
assert max(RETRY_DELAYS_SECONDS) <= 12 * 3600


def delay_before_retry(attempt: int) -> int | None:
    """Seconds to wait after failed attempt `attempt` (1-based); None when attempts are exhausted."""
    if attempt < 1 or attempt > len(RETRY_DELAYS_SECONDS):
        return None
    return RETRY_DELAYS_SECONDS[attempt - 1]
