"""The webhook retry schedule: about a day in all, each wait within SQS's visibility ceiling."""

from __future__ import annotations

import pytest

from shared.webhooks.retry import MAX_DELIVERY_ATTEMPTS, RETRY_DELAYS_SECONDS, delay_before_retry

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
