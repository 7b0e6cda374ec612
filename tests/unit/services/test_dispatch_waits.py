"""How long a job waits between dispatch rounds: full jitter over a doubling spread, after any known free time."""

from __future__ import annotations

import random

import pytest

from shared.models.job import WaitReason
from shared.services.dispatch import _Hold, retry_delay
from shared.settings import Settings

SETTINGS = Settings(dispatch_retry_base_seconds=2, dispatch_retry_max_seconds=60)


def hold(retry_in: float | None, reason: WaitReason = WaitReason.PROVIDER_UNAVAILABLE) -> _Hold:
    return _Hold("kie", reason, retry_in)


@pytest.mark.parametrize(("rounds", "spread"), [(0, 2), (1, 4), (3, 16), (5, 60), (2000, 60)])
def test_the_spread_doubles_each_round_up_to_the_cap(rounds: int, spread: float) -> None:
    rng = random.Random(7)
    waits = [retry_delay(SETTINGS, rounds, [hold(None)], rng) for _ in range(2000)]
    assert 0 <= min(waits) < spread * 0.05
    assert spread * 0.95 < max(waits) <= spread


def test_a_retry_after_is_a_floor_when_every_candidate_gave_a_time() -> None:
    rng = random.Random(7)
    holds = [hold(30), hold(45, WaitReason.PAUSED), hold(12, WaitReason.RATE_LIMITED)]
    waits = [retry_delay(SETTINGS, 0, holds, rng) for _ in range(500)]
    assert min(waits) >= 12  # the soonest any candidate may be free
    assert max(waits) <= 12 + 2


def test_a_candidate_that_may_be_free_at_once_adds_no_floor() -> None:
    rng = random.Random(7)
    waits = [retry_delay(SETTINGS, 0, [hold(30), hold(None)], rng) for _ in range(500)]
    assert max(waits) <= 2
