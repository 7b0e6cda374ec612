"""The per-endpoint circuit breaker on moto DynamoDB, on a clock the test moves: closed, open, half-open."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.repository.endpoints import Endpoint, EndpointHealthRepository
from shared.webhooks.breaker import (
    FAILURES_TO_PAUSE,
    PAUSES_SECONDS,
    TRIAL_MARGIN_SECONDS,
    Admission,
    CircuitBreaker,
    pause_after,
)
from tests.fixtures.aws import TABLE

NOW = 1_800_000_000.0
TRIAL = 10.0
HOOK = Endpoint("tenant-a", "https://hooks.example.com/kling")


@pytest.fixture
def repository(dynamodb: Any) -> EndpointHealthRepository:
    return EndpointHealthRepository(TABLE, dynamodb)


@pytest.fixture
def breaker(repository: EndpointHealthRepository) -> CircuitBreaker:
    return CircuitBreaker(repository, trial_seconds=TRIAL)


def fail(breaker: CircuitBreaker, times: int, at: float = NOW, endpoint: Endpoint = HOOK) -> list[float | None]:
    """`times` failures; the pause end each one opened (None when it opened nothing)."""
    return [opened.until if (opened := breaker.failed(endpoint, at, "HTTP 500")) else None for _ in range(times)]


def test_pauses_grow_then_stay_at_the_longest() -> None:
    assert [pause_after(n) for n in range(7)] == [60, 300, 1800, 7200, 21600, 21600, 21600]
    assert list(PAUSES_SECONDS) == sorted(PAUSES_SECONDS)


def test_a_healthy_endpoint_is_attempted_and_has_no_state(
    breaker: CircuitBreaker, repository: EndpointHealthRepository
) -> None:
    decision = breaker.admit(HOOK, NOW)
    assert (decision.admission, decision.state) == (Admission.ATTEMPT, None)
    assert breaker.succeeded(HOOK, decision) is False  # nothing to forget: no write either
    assert repository.get(HOOK) is None


def test_failures_below_the_threshold_keep_it_closed(breaker: CircuitBreaker) -> None:
    assert fail(breaker, FAILURES_TO_PAUSE - 1) == [None] * (FAILURES_TO_PAUSE - 1)
    decision = breaker.admit(HOOK, NOW)
    assert decision.admission is Admission.ATTEMPT
    assert decision.state is not None
    assert decision.state.failures == FAILURES_TO_PAUSE - 1


def test_the_threshold_opens_it_for_the_first_pause(breaker: CircuitBreaker) -> None:
    opened = fail(breaker, FAILURES_TO_PAUSE)
    assert opened == [None] * (FAILURES_TO_PAUSE - 1) + [NOW + PAUSES_SECONDS[0]]

    decision = breaker.admit(HOOK, NOW + 30)
    assert (decision.admission, decision.wait_until) == (Admission.WAIT, NOW + PAUSES_SECONDS[0])
    # Failures of deliveries already under way when it opened do not open it again, nor stretch the pause.
    assert fail(breaker, 3, at=NOW + 1) == [None, None, None]
    assert breaker.admit(HOOK, NOW + 30).wait_until == NOW + PAUSES_SECONDS[0]


def test_racing_failures_open_it_exactly_once(dynamodb: Any) -> None:
    results: list[float | None] = []
    lock = threading.Lock()

    def one() -> None:
        found = fail(CircuitBreaker(EndpointHealthRepository(TABLE, dynamodb), TRIAL), 1)
        with lock:
            results.extend(found)

    threads = [threading.Thread(target=one) for _ in range(3 * FAILURES_TO_PAUSE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [until for until in results if until is not None] == [NOW + PAUSES_SECONDS[0]]


def test_after_the_pause_one_delivery_holds_the_trial(breaker: CircuitBreaker) -> None:
    fail(breaker, FAILURES_TO_PAUSE)
    later = NOW + PAUSES_SECONDS[0] + 1

    first = breaker.admit(HOOK, later)
    second = breaker.admit(HOOK, later + 1)

    assert first.admission is Admission.TRIAL
    assert second.admission is Admission.WAIT
    assert second.wait_until == later + TRIAL + TRIAL_MARGIN_SECONDS + TRIAL_MARGIN_SECONDS
    # A trial that never reported back (its function died) frees the breaker once its lease is over.
    assert breaker.admit(HOOK, later + TRIAL + TRIAL_MARGIN_SECONDS + 1).admission is Admission.TRIAL


def test_a_successful_trial_closes_it(breaker: CircuitBreaker, repository: EndpointHealthRepository) -> None:
    fail(breaker, FAILURES_TO_PAUSE)
    trial = breaker.admit(HOOK, NOW + PAUSES_SECONDS[0] + 1)

    assert breaker.succeeded(HOOK, trial) is True
    assert repository.get(HOOK) is None
    assert breaker.admit(HOOK, NOW + PAUSES_SECONDS[0] + 2).admission is Admission.ATTEMPT


def test_a_failed_trial_opens_it_again_for_the_next_pause(breaker: CircuitBreaker) -> None:
    at = NOW
    for opening, pause in enumerate(PAUSES_SECONDS[:3]):
        if opening == 0:
            assert fail(breaker, FAILURES_TO_PAUSE, at=at)[-1] == at + pause
        else:
            assert breaker.admit(HOOK, at).admission is Admission.TRIAL
            assert fail(breaker, 1, at=at) == [at + pause]  # one failed trial is enough
        at += pause + 1
    state = breaker.admit(HOOK, NOW).state
    assert state is not None
    assert state.opens == 3


def test_endpoints_are_per_tenant_and_per_url(breaker: CircuitBreaker) -> None:
    fail(breaker, FAILURES_TO_PAUSE)
    same_url_other_tenant = Endpoint("tenant-b", HOOK.url)
    other_url = Endpoint("tenant-a", HOOK.url + "/v2")

    assert breaker.admit(HOOK, NOW + 1).admission is Admission.WAIT
    assert breaker.admit(same_url_other_tenant, NOW + 1).admission is Admission.ATTEMPT
    assert breaker.admit(other_url, NOW + 1).admission is Admission.ATTEMPT
