"""When a failed delivery to an app's webhook is tried again (about a day in all, as Svix does).

A message's next attempt is scheduled by hiding it on the queue (its visibility timeout) for the delay below,
longer when the endpoint asked for it (`Retry-After`) or is paused by its circuit breaker, but never past SQS's
12-hour ceiling nor so late that the message would expire on the queue instead of reaching the dead-letter
queue. The queue's receive count is the attempt number, so an exhausted message is made visible at once and
the queue's redrive policy moves it to the dead-letter queue on its next receive.
"""

from __future__ import annotations

import math

# Delay before attempt n+1 after attempt n failed (attempt 1 is immediate).
RETRY_DELAYS_SECONDS: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_DELIVERY_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1  # the deliver queue's maxReceiveCount
MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's visibility-timeout ceiling
# The longest pause of a failing endpoint (shared.webhooks.breaker); a paused endpoint's messages wait it out.
LONGEST_PAUSE_SECONDS = 6 * 3600
# The deliver queue keeps a message for the whole schedule, one longest pause, and the attempts themselves.
DELIVERY_RETENTION_SECONDS = sum(RETRY_DELAYS_SECONDS) + LONGEST_PAUSE_SECONDS + 2 * 3600
# A retry is never scheduled later than this before the message would expire: it must reach the DLQ.
RETENTION_MARGIN_SECONDS = 3600
assert max(RETRY_DELAYS_SECONDS) <= MAX_VISIBILITY_SECONDS
# What the deliver function allows itself beyond a delivery's deadline: the breaker's reads and writes and the
# queue call, then answering with the batch's failures. Its timeout covers both (infra/notifications.py).
BOOKKEEPING_SECONDS = 12.0
ANSWER_SECONDS = 2.0


def delay_before_retry(attempt: int) -> int | None:
    """Seconds to wait after failed attempt `attempt` (1-based); None when attempts are exhausted."""
    if attempt < 1 or attempt > len(RETRY_DELAYS_SECONDS):
        return None
    return RETRY_DELAYS_SECONDS[attempt - 1]


def hidden_for(
    attempt: int,
    *,
    now: float,
    sent_at: float | None = None,
    retry_after: float | None = None,
    not_before: float | None = None,
) -> int:
    """How long (seconds) to hide a message whose attempt `attempt` failed or was put off: its scheduled delay,
    at least `retry_after` and until `not_before` (epoch seconds), within SQS's ceiling and the message's
    remaining life on the queue (`sent_at`, epoch seconds, when it was queued). 0 once attempts are exhausted:
    the message shows again at once and the redrive policy dead-letters it."""
    delay = delay_before_retry(attempt)
    if delay is None:
        return 0
    if retry_after is not None:
        delay = max(delay, math.ceil(retry_after))
    if not_before is not None:
        delay = max(delay, math.ceil(not_before - now))
    delay = min(delay, MAX_VISIBILITY_SECONDS)
    if sent_at is not None:
        left = math.floor(sent_at + DELIVERY_RETENTION_SECONDS - RETENTION_MARGIN_SECONDS - now)
        delay = min(delay, max(0, left))
    return delay
