"""Submit limits: window rate and tasks in flight, refused in each provider's own style, set through
`PUT /_control/config` `limits`, counted as `submits_rate_limited`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.provider_emulator import ProviderEmulator
from local.provider_emulator.limits import KIE_DOCUMENTED_LIMIT, ProviderLimit
from shared.providers.errors import ErrorKind, kind_for_status
from shared.providers.pixwith import message_kind
from tests.unit.provider_emulator.helpers import PROVIDERS, ProviderClient, valid_body


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked(clock: FakeClock) -> Iterator[ProviderEmulator]:
    """An emulator whose limit windows follow `clock`, with tasks that outlast every test."""
    with ProviderEmulator(job_seconds=600, limit_clock=clock) as emu:
        yield emu


def client_of(emu: ProviderEmulator, http: httpx.Client, provider: str = "kie") -> ProviderClient:
    return ProviderClient(emu, http, provider)


def refused(response: httpx.Response, provider: str) -> bool:
    """Whether an answer is the provider's limit refusal (Pixwith: HTTP 200 with `code: 0`)."""
    if provider == "pixwith":
        body = response.json()
        return response.status_code == 200 and body["code"] == 0 and "Too many" in body["message"]
    return response.status_code == 429


@pytest.mark.parametrize("provider", PROVIDERS)
def test_over_the_window_rate_each_provider_refuses_in_its_own_style(clients, control, provider: str):
    client: ProviderClient = clients[provider]
    limits = {provider: {"submits_per_window": 2, "window_seconds": 60}}
    assert control("PUT", "/config", {"limits": limits}).status_code == 200
    client.submit_ok()
    client.submit_ok()

    response = client.submit(valid_body(provider))

    body: dict[str, Any] = response.json()
    assert "Retry-After" not in response.headers  # no provider documents one
    message = "Too many requests: at most 2 new tasks per 60 s"
    if provider == "kie":
        assert (response.status_code, body) == (429, {"code": 429, "msg": message, "data": None})
    elif provider == "vidgo":
        assert (response.status_code, body) == (429, {"code": 429, "message": message, "data": None})
    elif provider == "aimlapi":
        assert response.status_code == 429
        assert body["statusCode"] == 429
        assert body["message"] == message
        assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
        assert body["path"] == "/aimlapi/v2/video/generations"
    elif provider == "apimart":
        assert response.status_code == 429
        assert body == {"code": 429, "error": {"message": message, "type": "rate_limit_error"}}
    else:
        assert (response.status_code, body) == (200, {"code": 0, "message": message, "data": None})
        # the relay's Pixwith adapter reads this message as transient (retry, fail over), not a rejection
        assert message_kind(body["message"]) is ErrorKind.RETRYABLE
    if provider != "pixwith":
        assert kind_for_status(response.status_code) is ErrorKind.RETRYABLE
    assert len(client.emulator.tasks(provider)) == 2


def test_window_rolls_over_on_the_limit_clock(clocked: ProviderEmulator, clock: FakeClock, http: httpx.Client):
    clocked.set_limit("kie", {"submits_per_window": 3, "window_seconds": 10})
    kie = client_of(clocked, http)
    for at in (0.0, 4.0, 8.0):
        clock.now = 1000.0 + at
        kie.submit_ok()
    clock.now = 1009.9
    assert refused(kie.submit(valid_body("kie")), "kie")
    clock.now = 1010.0  # the first task's slot leaves the window exactly now
    kie.submit_ok()
    assert refused(kie.submit(valid_body("kie")), "kie")
    clock.now = 1014.0  # the second one's
    kie.submit_ok()
    assert refused(kie.submit(valid_body("kie")), "kie")
    assert clocked.stats()["kie"].submits_accepted == 5
    assert clocked.stats()["kie"].submits_rate_limited == 3


def test_retry_after_only_when_the_limit_asks(clocked: ProviderEmulator, clock: FakeClock, http: httpx.Client):
    clocked.set_limit("vidgo", {"submits_per_window": 2, "window_seconds": 10, "retry_after": True})
    vidgo = client_of(clocked, http, "vidgo")
    vidgo.submit_ok()
    clock.now += 4.0
    vidgo.submit_ok()
    clock.now += 1.5
    response = vidgo.submit(valid_body("vidgo"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"  # the first slot frees 4.5 s from now, rounded up
    clock.now += 4.5
    vidgo.submit_ok()


def test_refused_and_invalid_submits_take_no_slot(clocked: ProviderEmulator, clock: FakeClock, http: httpx.Client):
    clocked.set_limit("kie", {"submits_per_window": 1, "window_seconds": 10})
    kie = client_of(clocked, http)
    invalid = valid_body("kie")
    invalid["input"]["duration"] = 5  # Kie wants the string "5"
    assert kie.submit(invalid).status_code == 422  # validation comes first, even at the limit
    assert kie.submit(valid_body("kie"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    kie.submit_ok()
    for _ in range(5):
        assert refused(kie.submit(valid_body("kie")), "kie")
    clock.now += 10.0  # the refusals above did not push the window on
    kie.submit_ok()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tasks_in_flight_are_capped_and_released_when_they_end(
    clocked: ProviderEmulator, http: httpx.Client, provider: str
):
    clocked.set_limit(provider, {"max_concurrent": 2})
    client = client_of(clocked, http, provider)
    first = client.submit_ok()
    second = client.submit_ok()
    response = client.submit(valid_body(provider))
    assert refused(response, provider)
    assert "Too many tasks in progress: at most 2 at once" in response.text
    clocked.finish(first, "success")
    third = client.submit_ok()
    assert refused(client.submit(valid_body(provider)), provider)
    clocked.finish(second, "fail", "moderation")  # a failure ends a task as well
    client.submit_ok()
    assert refused(client.submit(valid_body(provider)), provider)
    assert clocked.task(third) is not None
    assert clocked.stats()[provider].submits_rate_limited == 3


def test_tasks_that_run_out_their_time_leave_the_count(emulator: ProviderEmulator, clients):
    emulator.set_limit("kie", {"max_concurrent": 1})
    kie: ProviderClient = clients["kie"]
    first = kie.submit_ok()
    assert refused(kie.submit(valid_body("kie")), "kie")
    kie.wait_terminal(first)
    kie.submit_ok()


def test_null_removes_one_providers_limit_and_keeps_the_others(clients, control):
    both = {"kie": {"max_concurrent": 1}, "vidgo": {"max_concurrent": 1}}
    assert control("PUT", "/config", {"limits": both}).json()["limits"]["kie"]["max_concurrent"] == 1
    clients["kie"].submit_ok()
    clients["vidgo"].submit_ok()
    assert refused(clients["kie"].submit(valid_body("kie")), "kie")

    config = control("PUT", "/config", {"limits": {"kie": None}}).json()

    assert set(config["limits"]) == {"vidgo"}
    assert control("GET", "/config").json()["limits"] == config["limits"]
    clients["kie"].submit_ok()
    clients["kie"].submit_ok()
    assert refused(clients["vidgo"].submit(valid_body("vidgo")), "vidgo")


@pytest.mark.parametrize(
    ("limits", "field", "reason"),
    [
        ({"runway": {"max_concurrent": 1}}, "limits.runway", "Input should be"),
        ({"kie": {"submits_per_window": 0, "window_seconds": 10}}, "limits.kie.submits_per_window", "greater than"),
        ({"kie": {"submits_per_window": 20, "window_seconds": 0}}, "limits.kie.window_seconds", "greater than"),
        ({"kie": {"submits_per_window": 20}}, "limits.kie", "submits_per_window and window_seconds go together"),
        ({"kie": {"window_seconds": 10}}, "limits.kie", "submits_per_window and window_seconds go together"),
        ({"kie": {}}, "limits.kie", "set submits_per_window with window_seconds, max_concurrent, or both"),
        ({"kie": {"max_concurrent": -1}}, "limits.kie.max_concurrent", "greater than"),
        ({"kie": {"max_concurrent": 5, "burst": 3}}, "limits.kie.burst", "Extra inputs"),
        ({"kie": "20/10s"}, "limits.kie", "valid dictionary"),
        ("kie", "limits", "valid dictionary"),
    ],
)
def test_an_invalid_limit_is_a_400_naming_the_field_and_changes_nothing(
    control, emulator: ProviderEmulator, limits: object, field: str, reason: str
):
    control("PUT", "/config", {"limits": {"vidgo": {"max_concurrent": 7}}})
    before = control("GET", "/config").json()
    valid_limit = {"apimart": {"max_concurrent": 3}}  # valid, and yet not applied either
    body = {"job_seconds": 9, "limits": {**valid_limit, **limits} if isinstance(limits, dict) else limits}

    response = control("PUT", "/config", body)

    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["field"] == field
    assert reason in answer["reason"]
    assert answer["error"] == f"{field}: {answer['reason']}"
    assert control("GET", "/config").json() == before
    assert emulator.limits() == {"vidgo": ProviderLimit(max_concurrent=7)}


def test_stats_count_rate_limited_submits_per_provider(clients, control, emulator: ProviderEmulator):
    control("PUT", "/config", {"limits": {"aimlapi": {"max_concurrent": 1}, "pixwith": {"max_concurrent": 1}}})
    clients["aimlapi"].submit_ok()
    clients["pixwith"].submit_ok()
    for _ in range(3):
        clients["aimlapi"].submit(valid_body("aimlapi"))
    clients["pixwith"].submit(valid_body("pixwith"))
    clients["kie"].submit_ok()

    stats = control("GET", "/stats").json()

    assert stats["aimlapi"]["submits_rate_limited"] == 3
    assert stats["aimlapi"]["submits_rejected"] == 3
    assert stats["aimlapi"]["submits"] == stats["aimlapi"]["submits_accepted"] + 3
    assert stats["pixwith"]["submits_rate_limited"] == 1
    assert stats["kie"]["submits_rate_limited"] == 0
    # a reset forgets counts, windows and tasks in flight, and keeps the limits
    control("POST", "/reset")
    assert control("GET", "/stats").json()["aimlapi"]["submits_rate_limited"] == 0
    clients["aimlapi"].submit_ok()
    assert refused(clients["aimlapi"].submit(valid_body("aimlapi")), "aimlapi")


def test_a_burst_from_many_threads_gets_exactly_the_limit(clocked: ProviderEmulator, http: httpx.Client):
    clocked.set_limit("kie", {"submits_per_window": 5, "window_seconds": 10, "max_concurrent": 100})
    kie = client_of(clocked, http)
    answers: list[int] = []
    lock = threading.Lock()

    def submit() -> None:
        with httpx.Client(trust_env=False, timeout=10) as own:
            status = client_of(clocked, own).submit(valid_body("kie")).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [200] * 5 + [429] * 11
    assert len(clocked.tasks("kie")) == 5
    assert clocked.stats()["kie"].submits_rate_limited == 11
    assert refused(kie.submit(valid_body("kie")), "kie")


def test_limits_in_code_and_kies_documented_default():
    # providers.md: Kie takes 20 new tasks per 10 s and typically 100+ concurrent tasks
    documented = KIE_DOCUMENTED_LIMIT.model_dump(include={"submits_per_window", "window_seconds", "max_concurrent"})
    assert documented == {"submits_per_window": 20, "window_seconds": 10, "max_concurrent": 100}
    emu = ProviderEmulator(limits={"kie": KIE_DOCUMENTED_LIMIT, "vidgo": {"max_concurrent": 4}, "apimart": None})
    assert emu.limits() == {"kie": KIE_DOCUMENTED_LIMIT, "vidgo": ProviderLimit(max_concurrent=4)}
    emu.set_limit("vidgo", None)
    assert set(emu.limits()) == {"kie"}
    with pytest.raises(ValueError, match="unknown provider 'runway'"):
        ProviderEmulator(limits={"runway": {"max_concurrent": 1}})
    with pytest.raises(ValueError, match="go together"):
        emu.set_limit("kie", {"submits_per_window": 3})
    assert emu.limits()["kie"] == KIE_DOCUMENTED_LIMIT
