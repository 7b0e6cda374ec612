"""Retries: which failures are tried again, after how long, and always with the same Idempotency-Key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from kling_relay import (
    APIConnectionError,
    APITimeoutError,
    BudgetExceededError,
    IdempotencyConflictError,
    JobTerminalError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RetryPolicy,
    ServiceUnavailableError,
    TooManyActiveJobsError,
)
from kling_relay._retry import parse_retry_after

from shared.models.common import JobStatus
from tests.unit.sdk.conftest import answers, async_client, error_json, job_json


def test_create_is_retried_on_503_after_retry_after_with_the_same_idempotency_key(client, sleeps) -> None:
    job = job_json()
    relay, api = client(
        answers(
            httpx.Response(503, json=error_json("provider_unavailable"), headers={"Retry-After": "7"}),
            httpx.Response(429, json=error_json("rate_limited"), headers={"Retry-After": "2"}),
            httpx.Response(202, json=job),
        )
    )
    created = relay.jobs.create(prompt="a fox", provider="kie")
    assert created.id == job["id"]
    assert sleeps == [7.0, 2.0]
    keys = {request.headers["Idempotency-Key"] for request in api.requests}
    assert len(api.requests) == 3
    assert len(keys) == 1


def test_each_create_call_gets_its_own_key_unless_one_is_given(client, sleeps) -> None:
    job = job_json()
    relay, api = client(lambda _: httpx.Response(202, json=job))
    relay.jobs.create(prompt="one")
    relay.jobs.create(prompt="two")
    relay.jobs.create(prompt="three", idempotency_key="order-42")
    first, second, third = (request.headers["Idempotency-Key"] for request in api.requests)
    assert first != second
    assert third == "order-42"
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_failures_back_off_exponentially(client, sleeps, status: int) -> None:
    relay, api = client(
        answers(*[httpx.Response(status, json=error_json("internal_error"))] * 3, httpx.Response(202, json=job_json())),
        retry=RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=8.0, rand=lambda: 0.0),
    )
    relay.jobs.create(prompt="a fox")
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(api.requests) == 4


def test_backoff_is_capped_and_jittered_downwards(client, sleeps) -> None:
    policy = RetryPolicy(max_retries=6, initial_delay=1.0, max_delay=4.0, rand=lambda: 1.0)
    error = ServiceUnavailableError("busy", status_code=503, code="busy")
    assert [policy.delay(n, error) for n in range(7)] == [0.75, 1.5, 3.0, 3.0, 3.0, 3.0, None]


def test_connection_errors_and_timeouts_are_retried_then_raised_typed(client, sleeps) -> None:
    relay, api = client(
        answers(
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(202, json=job_json()),
        )
    )
    relay.jobs.create(prompt="a fox")
    assert len(sleeps) == 2
    assert len({request.headers["Idempotency-Key"] for request in api.requests}) == 1

    relay, api = client(answers(*[httpx.ReadTimeout("slow")] * 4))
    with pytest.raises(APITimeoutError) as timed_out:
        relay.jobs.get("job_1")
    assert timed_out.value.tries == 4
    assert isinstance(timed_out.value.__cause__, httpx.ReadTimeout)

    relay, _ = client(answers(httpx.ConnectError("refused")), max_retries=0)
    with pytest.raises(APIConnectionError):
        relay.jobs.get("job_1")


def test_retries_spent_raise_the_last_error_with_its_details(client, sleeps) -> None:
    unavailable = httpx.Response(
        503,
        json=error_json("provider_unavailable", "every provider is busy", {"attempts": 2}),
        headers={"Retry-After": "1"},
    )
    relay, _ = client(answers(*[unavailable] * 3), max_retries=2)
    with pytest.raises(ProviderUnavailableError) as raised:
        relay.jobs.create(prompt="a fox")
    error = raised.value
    assert (error.status_code, error.code, error.message, error.details) == (
        503,
        "provider_unavailable",
        "every provider is busy",
        {"attempts": 2},
    )
    assert error.retry_after == 1.0
    assert error.tries == 3
    assert sleeps == [1.0, 1.0]


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (429, "budget_exceeded", BudgetExceededError),
        (502, "provider_rejected", ProviderRejectedError),
        (409, "idempotency_conflict", IdempotencyConflictError),
    ],
)
def test_final_answers_are_not_retried(client, sleeps, status: int, code: str, error_type: type[Exception]) -> None:
    relay, api = client(lambda _: httpx.Response(status, json=error_json(code)))
    with pytest.raises(error_type):
        relay.jobs.create(prompt="a fox")
    assert len(api.requests) == 1
    assert sleeps == []


def test_a_conflict_with_another_writer_is_retried(client, sleeps) -> None:
    relay, api = client(
        answers(
            httpx.Response(409, json=error_json("conflict", "retry the request")), httpx.Response(202, json=job_json())
        )
    )
    relay.jobs.create(prompt="a fox")
    assert len(api.requests) == 2


def test_a_retry_after_longer_than_the_limit_is_raised_for_the_caller_to_schedule(client, sleeps) -> None:
    relay, api = client(
        lambda _: httpx.Response(429, json=error_json("too_many_active_jobs"), headers={"Retry-After": "600"})
    )
    with pytest.raises(TooManyActiveJobsError) as raised:
        relay.jobs.create(prompt="a fox")
    assert raised.value.retry_after == 600.0
    assert len(api.requests) == 1
    assert sleeps == []


def test_retry_after_as_an_http_date_and_unreadable_values() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("1.5") == 1.5
    for unreadable in (None, "", "soon", "-3", "nan", "inf", "\u00b2"):
        assert parse_retry_after(unreadable) is None


def test_a_cancel_whose_first_answer_was_lost_returns_the_canceled_job(client, sleeps) -> None:
    canceled = job_json(JobStatus.CANCELED)
    relay, api = client(
        answers(
            httpx.ReadError("connection reset"),
            httpx.Response(409, json=error_json("job_terminal", "already canceled", {"status": "canceled"})),
            httpx.Response(200, json=canceled),
        )
    )
    assert relay.jobs.cancel(canceled["id"]).status == "canceled"
    assert [request.method for request in api.requests] == ["POST", "POST", "GET"]


def test_a_cancel_of_a_finished_job_is_a_conflict(client, sleeps) -> None:
    relay, _ = client(
        lambda _: httpx.Response(409, json=error_json("job_terminal", "already canceled", {"status": "canceled"}))
    )
    with pytest.raises(JobTerminalError) as raised:
        relay.jobs.cancel("job_1")
    assert raised.value.details == {"status": "canceled"}


def test_the_async_client_retries_alike(sleeps) -> None:
    async def scenario() -> None:
        relay, api = async_client(
            answers(
                httpx.Response(503, json=error_json("tracking_unavailable"), headers={"Retry-After": "3"}),
                httpx.ConnectError("refused"),
                httpx.Response(202, json=job_json()),
            ),
            retry=RetryPolicy(rand=lambda: 0.0),
        )
        async with relay:
            await relay.jobs.create(prompt="a fox")
        assert len({request.headers["Idempotency-Key"] for request in api.requests}) == 1
        assert sleeps == [3.0, 1.0]

    asyncio.run(scenario())
