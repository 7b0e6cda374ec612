"""The webhook retry schedule: about a day in all, each wait within SQS's visibility ceiling and the message's life."""

from __future__ import annotations

import pytest

from shared.webhooks.retry import (
    DELIVERY_RETENTION_SECONDS,
    LONGEST_PAUSE_SECONDS,
    MAX_DELIVERY_ATTEMPTS,
    MAX_VISIBILITY_SECONDS,
    RETENTION_MARGIN_SECONDS,
    RETRY_DELAYS_SECONDS,
    delay_before_retry,
    hidden_for,
)

HOUR = 3600
SQS_MAX_VISIBILITY = 12 * HOUR


def test_the_schedule_spans_about_a_day() -> None:
    total = sum(RETRY_DELAYS_SECONDS)
    assert 24 * HOUR <= total <= 30 * HOUR
    assert total == 99_305  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h


def test_every_delay_fits_in_one_visibility_timeout() -> None:
    assert all(0 < delay <= SQS_MAX_VISIBILITY for delay in RETRY_DELAYS_SECONDS)


def test_delays_never_shrink() -> None:
    assert list(RETRY_DELAYS_SECONDS) == sorted(RETRY_DELAYS_SECONDS)
    assert RETRY_DELAYS_SECONDS[0] <= 60  # a blip is retried quickly


def test_the_first_attempt_plus_one_per_delay_is_the_queues_receive_limit() -> None:
    assert len(RETRY_DELAYS_SECONDS) + 1 == MAX_DELIVERY_ATTEMPTS


@pytest.mark.parametrize("attempt", range(1, MAX_DELIVERY_ATTEMPTS))
def test_each_failed_attempt_but_the_last_waits_its_scheduled_delay(attempt: int) -> None:
    assert delay_before_retry(attempt) == RETRY_DELAYS_SECONDS[attempt - 1]


@pytest.mark.parametrize("attempt", [MAX_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS + 1, 100, 0, -1])
def test_no_retry_after_the_last_attempt_or_for_a_nonsense_count(attempt: int) -> None:
    assert delay_before_retry(attempt) is None


# -- how long a message is hidden until its next attempt ---------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, RETRY_DELAYS_SECONDS[0]),
        (1, 120.0, 120),  # the endpoint asks for longer: granted
        (1, 0.4, RETRY_DELAYS_SECONDS[0]),  # for shorter: the schedule wins
        (5, 120.0, RETRY_DELAYS_SECONDS[4]),
        (1, 10.0**9, MAX_VISIBILITY_SECONDS),  # never past SQS's ceiling
        (2, 300.5, 301),  # whole seconds, rounded up
    ],
)
def test_the_schedule_or_a_longer_retry_after_within_the_ceiling(
    attempt: int, retry_after: float | None, expected: int
) -> None:
    assert hidden_for(attempt, now=NOW, sent_at=NOW, retry_after=retry_after) == expected


def test_a_paused_endpoint_holds_the_message_until_its_pause_ends() -> None:
    assert hidden_for(1, now=NOW, sent_at=NOW, not_before=NOW + 1800) == 1800
    assert hidden_for(4, now=NOW, sent_at=NOW, not_before=NOW + 60) == RETRY_DELAYS_SECONDS[3]  # schedule is longer


def test_a_message_is_never_hidden_past_its_life_on_the_queue() -> None:
    """It must reach the dead-letter queue (through its receive count), not expire on the queue unseen."""
    sent = NOW - DELIVERY_RETENTION_SECONDS + RETENTION_MARGIN_SECONDS + 100
    assert hidden_for(6, now=NOW, sent_at=sent) == 100
    assert hidden_for(6, now=NOW, sent_at=NOW - DELIVERY_RETENTION_SECONDS) == 0
    assert hidden_for(6, now=NOW, sent_at=None) == RETRY_DELAYS_SECONDS[5]  # unknown age: the schedule


@pytest.mark.parametrize("attempt", [MAX_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS + 3])
def test_an_exhausted_message_shows_again_at_once_for_the_dead_letter_queue(attempt: int) -> None:
    assert hidden_for(attempt, now=NOW, sent_at=NOW, retry_after=600.0, not_before=NOW + 3600) == 0


def test_retention_covers_the_schedule_a_longest_pause_and_the_attempts() -> None:
    assert sum(RETRY_DELAYS_SECONDS) + LONGEST_PAUSE_SECONDS <= DELIVERY_RETENTION_SECONDS
    assert DELIVERY_RETENTION_SECONDS <= 14 * 24 * HOUR  # SQS's longest retention
