"""The poll wait policy: backoff with jitter inside [min, max], the provider's estimate, the deadline."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.models.common import JobStatus, utcnow
from shared.runtime import Runtime
from shared.services.poll import JITTER, backoff_seconds, next_wait
from shared.settings import Settings
from tests.fixtures.jobs import build_job


@st.composite
def wait_settings(draw: st.DrawFn) -> Settings:
    low = draw(st.integers(min_value=1, max_value=3600))
    high = draw(st.integers(min_value=low, max_value=3600))
    factor = draw(st.floats(min_value=1.0, max_value=10.0))
    return Settings(poll_min_wait_seconds=low, poll_max_wait_seconds=high, poll_backoff_factor=factor)


@given(config=wait_settings(), polls=st.integers(min_value=0, max_value=10**6), seed=st.integers())
def test_backoff_stays_within_min_and_max_for_any_poll_count(config: Settings, polls: int, seed: int) -> None:
    wait = backoff_seconds(config, polls, random.Random(seed))

    assert config.poll_min_wait_seconds <= wait <= config.poll_max_wait_seconds


@given(config=wait_settings(), polls=st.integers(min_value=0, max_value=40), seed=st.integers())
def test_backoff_is_the_exponential_base_with_bounded_jitter(config: Settings, polls: int, seed: int) -> None:
    base = min(config.poll_max_wait_seconds, config.poll_min_wait_seconds * config.poll_backoff_factor**polls)

    wait = backoff_seconds(config, polls, random.Random(seed))

    low = max(config.poll_min_wait_seconds, base * (1 - JITTER))
    high = min(config.poll_max_wait_seconds, base * (1 + JITTER))
    assert low - 1e-9 <= wait <= high + 1e-9


def test_backoff_grows_until_the_cap() -> None:
    config = Settings(poll_min_wait_seconds=15, poll_max_wait_seconds=120, poll_backoff_factor=2.0)

    class Middle(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return (a + b) / 2

    assert [backoff_seconds(config, n, Middle()) for n in range(6)] == [15, 30, 60, 120, 120, 120]


@given(
    polls=st.integers(min_value=0, max_value=50),
    estimate=st.none() | st.integers(min_value=1, max_value=20_000),
    age=st.integers(min_value=0, max_value=3000),
    to_deadline=st.integers(min_value=1, max_value=20_000),
)
def test_next_wait_honours_the_estimate_but_never_the_far_side_of_the_deadline(
    polls: int, estimate: int | None, age: int, to_deadline: int
) -> None:
    config = Settings(poll_min_wait_seconds=15, poll_max_wait_seconds=120, job_deadline_seconds=3600)
    now = utcnow()
    job = build_job(
        status=JobStatus.RUNNING,
        provider_task_id="t",
        provider_estimate_seconds=estimate,
        created_at=now - timedelta(seconds=age),
        deadline_at=now + timedelta(seconds=to_deadline),
    )

    wait = next_wait(Runtime(config), job, polls, now)

    assert 1 <= wait <= to_deadline + 1
    ready_in = (estimate or 0) - age
    if ready_in <= to_deadline:
        assert wait >= min(round(ready_in), to_deadline + 1)
    if ready_in < config.poll_min_wait_seconds:
        assert wait >= min(config.poll_min_wait_seconds, to_deadline + 1)


def test_archiving_waits_are_not_cut_by_the_deadline() -> None:
    config = Settings(poll_min_wait_seconds=30, poll_max_wait_seconds=30)
    now = utcnow()
    job = build_job(status=JobStatus.ARCHIVING, deadline_at=now - timedelta(seconds=100))

    assert next_wait(Runtime(config), job, 0, now) == 30
