"""Vidgo and Kie callbacks: bodies, Kie's signature, retries, and the callback faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time

import pytest

from local.provider_emulator import ProviderEmulator
from tests.unit.provider_emulator.conftest import HMAC_KEY
from tests.unit.provider_emulator.helpers import ProviderClient, Receiver, free_port_url, valid_body, view


@pytest.fixture(autouse=True)
def quick_jobs(emulator: ProviderEmulator) -> None:
    emulator.set_job_seconds(0.15)


def kie_signature_ok(headers: dict[str, str], task_id: str, key: str = HMAC_KEY) -> bool:
    timestamp = headers["X-Webhook-Timestamp"]
    expected = base64.b64encode(hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest())
    return hmac.compare_digest(expected.decode(), headers["X-Webhook-Signature"])


def add_fault(control, **fault) -> str:
    response = control("POST", "/faults", fault)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def wait_attempts(emulator: ProviderEmulator, task_id: str, count: int, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempts = view(emulator, task_id).callback_attempts
        if len(attempts) >= count:
            return attempts
        time.sleep(0.02)
    raise AssertionError(f"expected {count} callback attempts for {task_id}")


# -- bodies and signature -----------------------------------------------------------------------


def test_vidgo_callback_is_the_status_body_unsigned(clients):
    client: ProviderClient = clients["vidgo"]
    with Receiver() as receiver:
        task_id = client.submit_ok(callback_url=receiver.url(token="tok-1"))
        [hook] = receiver.wait_for(1)
        assert hook.path == "/hook"
        assert hook.query == {"token": ["tok-1"]}
        assert hook.headers["Content-Type"] == "application/json"
        assert not any(name.lower().startswith("x-webhook") for name in hook.headers)
        assert hook.body == client.status_json(task_id)
        assert hook.body["data"]["status"] == "finished"
        assert hook.body["data"]["files"][0]["file_type"] == "video"


def test_vidgo_calls_back_on_failure_too(clients, control):
    add_fault(control, kind="generation_failed", provider="vidgo", message="nsfw")
    with Receiver() as receiver:
        clients["vidgo"].submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1)
    assert hook.body["data"]["status"] == "failed"
    assert hook.body["data"]["files"] == []
    assert hook.body["data"]["error_message"] == "nsfw"


@pytest.mark.parametrize("fail", [False, True])
def test_kie_callback_is_signed_recordinfo_body(clients, control, fail):
    client: ProviderClient = clients["kie"]
    if fail:
        add_fault(control, kind="generation_failed", provider="kie")
    with Receiver() as receiver:
        task_id = client.submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1)
    assert hook.body == client.status_json(task_id)
    assert hook.body["data"]["taskId"] == task_id
    assert hook.body["data"]["state"] == ("fail" if fail else "success")
    assert abs(int(hook.headers["X-Webhook-Timestamp"]) - time.time()) < 5
    assert kie_signature_ok(hook.headers, task_id)
    assert not kie_signature_ok(hook.headers, task_id, key="another-key")


def test_kie_without_hmac_key_sends_no_signature(http):
    emu = ProviderEmulator(job_seconds=0.2, kie_hmac_key=None)
    emu.start()
    try:
        with Receiver() as receiver:
            ProviderClient(emu, http, "kie").submit_ok(callback_url=receiver.url())
            [hook] = receiver.wait_for(1)
        assert "X-Webhook-Signature" not in hook.headers
        assert "X-Webhook-Timestamp" not in hook.headers
    finally:
        emu.stop()


@pytest.mark.parametrize("provider", ["aimlapi", "pixwith", "apimart"])
def test_poll_only_providers_take_no_callback_field(clients, provider):
    body = valid_body(provider)
    body["callback_url"] = "https://example.com/hook"
    response = clients[provider].submit(body)
    assert "callback_url is not an accepted field" in response.text


def test_no_callback_without_a_callback_url(clients, emulator):
    client = clients["kie"]
    task_id = client.submit_ok()
    client.wait_terminal(task_id)
    time.sleep(0.1)
    assert view(emulator, task_id).callback_attempts == []


# -- retries ------------------------------------------------------------------------------------


def test_vidgo_retries_after_one_second_on_500(http):
    """The documented schedule, unscaled: a 500 is retried 1 s later."""
    emu = ProviderEmulator(job_seconds=0.1)
    emu.start()
    try:
        with Receiver(statuses=[500]) as receiver:
            task_id = ProviderClient(emu, http, "vidgo").submit_ok(callback_url=receiver.url())
            first, second = receiver.wait_for(2, timeout=5)
        assert second.at - first.at >= 0.9
        assert first.body == second.body
        # The receiver has the second request before the emulator has recorded its answer.
        attempts = wait_attempts(emu, task_id, 2)
        assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [(1, 500, False), (2, 200, True)]
    finally:
        emu.stop()


def test_vidgo_gives_up_after_three_retries_with_doubling_delays(clients, emulator):
    emulator.engine.config.callback_backoff_scale = 0.1  # 0.1 s, 0.2 s, 0.4 s
    with Receiver(statuses=[500, 502, 503, 500, 500]) as receiver:
        task_id = clients["vidgo"].submit_ok(callback_url=receiver.url())
        hooks = receiver.wait_for(4)
        time.sleep(0.6)
        assert len(receiver.received) == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(hooks)]
    for gap, expected in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= expected * 0.8
    attempts = view(emulator, task_id).callback_attempts
    assert [a.status_code for a in attempts] == [500, 502, 503, 500]
    assert not any(a.delivered for a in attempts)


@pytest.mark.parametrize("provider", ["vidgo", "kie"])
def test_connection_errors_are_retried_and_recorded(clients, emulator, provider):
    task_id = clients[provider].submit_ok(callback_url=free_port_url())
    expected = 4 if provider == "vidgo" else 3  # Kie: one try and two retries
    attempts = wait_attempts(emulator, task_id, expected)
    time.sleep(0.3)
    attempts = view(emulator, task_id).callback_attempts
    assert len(attempts) == expected
    assert all(a.status_code is None and "ConnectError" in (a.error or "") for a in attempts)
    assert emulator.stats()[provider].callbacks == expected
    assert emulator.stats()[provider].callbacks_delivered == 0


def test_kie_retries_twice(clients, emulator):
    with Receiver(statuses=[500, 500, 500]) as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        hooks = receiver.wait_for(3)
        time.sleep(0.3)
        assert len(receiver.received) == 3
    # each attempt is signed afresh
    assert all(kie_signature_ok(h.headers, task_id) for h in hooks)


def test_slow_receivers_do_not_block_the_api(clients):
    client = clients["kie"]
    held = threading.Event()
    with Receiver(hold=held) as receiver:
        task_id = client.submit_ok(callback_url=receiver.url())
        receiver.wait_for(1)
        # The receiver holds the callback open until released: these answer only if the API does not wait on it.
        client.status_json(task_id)
        client.submit_ok()
        held.set()


# -- callback faults ----------------------------------------------------------------------------


def test_callback_drop(clients, control, emulator):
    add_fault(control, kind="callback_drop", provider="kie", times=1)
    with Receiver() as receiver:
        dropped = clients["kie"].submit_ok(callback_url=receiver.url())
        delivered = clients["kie"].submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1)
        time.sleep(0.2)
        assert len(receiver.received) == 1
    assert hook.body["data"]["taskId"] == delivered
    [attempt] = view(emulator, dropped).callback_attempts
    assert attempt.label == "dropped"
    assert attempt.status_code is None


def test_callback_duplicate(clients, control):
    add_fault(control, kind="callback_duplicate", count=2)
    with Receiver() as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        hooks = receiver.wait_for(3)
        time.sleep(0.2)
        assert len(receiver.received) == 3
    assert all(h.body == hooks[0].body for h in hooks)
    assert all(kie_signature_ok(h.headers, task_id) for h in hooks)


def test_callback_delay(clients, control, emulator):
    add_fault(control, kind="callback_delay", provider="vidgo", seconds=0.8)
    with Receiver() as receiver:
        task_id = clients["vidgo"].submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1, timeout=5)
    finished = view(emulator, task_id).finished_at
    assert finished is not None
    assert hook.at - finished >= 0.8


def test_callback_out_of_order_vidgo_sends_running_after_finished(clients, control):
    add_fault(control, kind="callback_out_of_order", provider="vidgo")
    with Receiver() as receiver:
        clients["vidgo"].submit_ok(callback_url=receiver.url())
        first, second = receiver.wait_for(2)
    assert first.body["data"]["status"] == "finished"
    assert second.body["data"]["status"] == "running"
    assert second.body["data"]["files"] == []


@pytest.mark.parametrize("fail", [False, True])
def test_callback_out_of_order_kie_sends_the_opposite_ending(clients, control, fail):
    add_fault(control, kind="callback_out_of_order", provider="kie")
    if fail:
        add_fault(control, kind="generation_failed", provider="kie")
    with Receiver() as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        first, second = receiver.wait_for(2)
    assert first.body["data"]["state"] == ("fail" if fail else "success")
    assert second.body["data"]["state"] == ("success" if fail else "fail")
    assert kie_signature_ok(second.headers, task_id)


def test_forged_bad_signature(clients, control, emulator):
    add_fault(control, kind="callback_forged", how="bad_signature")
    with Receiver() as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1)
    assert hook.body["data"]["taskId"] == task_id
    assert not kie_signature_ok(hook.headers, task_id)
    # The receiver may hold the callback before the emulator has recorded the attempt it made: wait for it.
    assert wait_attempts(emulator, task_id, 1)[0].label == "forged:bad_signature"


def test_forged_stale_timestamp(clients, control):
    add_fault(control, kind="callback_forged", how="stale_timestamp", age_seconds=7200)
    with Receiver() as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        [hook] = receiver.wait_for(1)
    assert time.time() - int(hook.headers["X-Webhook-Timestamp"]) >= 7200 - 5
    assert kie_signature_ok(hook.headers, task_id)  # valid signature, just old


@pytest.mark.parametrize("provider", ["vidgo", "kie"])
def test_forged_bad_token(clients, control, provider):
    add_fault(control, kind="callback_forged", provider=provider, how="bad_token")
    with Receiver() as receiver:
        clients[provider].submit_ok(callback_url=receiver.url(token="the-real-token", job="j1"))
        [hook] = receiver.wait_for(1)
    assert hook.query["job"] == ["j1"]
    assert hook.query["token"] != ["the-real-token"]
    assert hook.query["token"][0].startswith("forged-")


@pytest.mark.parametrize("provider", ["vidgo", "kie"])
def test_forged_wrong_task(clients, control, provider):
    client: ProviderClient = clients[provider]
    other = client.submit_ok(prompt="another job")
    client.emulator.finish(other, "success")
    add_fault(control, kind="callback_forged", provider=provider, how="wrong_task", match_prompt="victim")
    with Receiver() as receiver:
        task_id = client.submit_ok(prompt="victim job", callback_url=receiver.url(token="victim-token"))
        [hook] = receiver.wait_for(1)
    named = hook.body["data"]["taskId" if provider == "kie" else "task_id"]
    assert named != task_id
    assert named == other
    assert hook.query["token"] == ["victim-token"]
    if provider == "kie":
        assert kie_signature_ok(hook.headers, other)


def test_signature_forgeries_do_not_apply_to_vidgo(control):
    response = control("POST", "/faults", {"kind": "callback_forged", "provider": "vidgo", "how": "bad_signature"})
    assert response.status_code == 422
    assert "vidgo callbacks are unsigned" in response.json()["error"]


def test_provider_agnostic_signature_forgery_skips_vidgo(clients, control):
    add_fault(control, kind="callback_forged", how="stale_timestamp")
    with Receiver() as receiver:
        clients["vidgo"].submit_ok(callback_url=receiver.url(token="t"))
        [vidgo_hook] = receiver.wait_for(1)
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        _, kie_hook = receiver.wait_for(2)
    assert vidgo_hook.query["token"] == ["t"]
    assert time.time() - int(kie_hook.headers["X-Webhook-Timestamp"]) > 3000
    assert kie_hook.body["data"]["taskId"] == task_id


def test_callback_faults_need_a_callback_provider(control):
    response = control("POST", "/faults", {"kind": "callback_drop", "provider": "pixwith"})
    assert response.status_code == 422
    assert "pixwith sends no callbacks" in response.json()["error"]


def test_forced_finish_calls_back_at_once(clients, emulator, http):
    emulator.set_job_seconds(30, provider="kie")
    with Receiver() as receiver:
        task_id = clients["kie"].submit_ok(callback_url=receiver.url())
        response = http.post(f"{emulator.control_url()}/tasks/{task_id}/finish", json={"outcome": "fail"})
        assert response.status_code == 200
        [hook] = receiver.wait_for(1, timeout=2)
    assert hook.body["data"]["state"] == "fail"


def test_reset_abandons_pending_deliveries(clients, control, emulator):
    add_fault(control, kind="callback_delay", seconds=0.5)
    with Receiver() as receiver:
        clients["vidgo"].submit_ok(callback_url=receiver.url())
        time.sleep(emulator.engine.config.job_seconds + 0.1)
        assert control("POST", "/reset").status_code == 200
        time.sleep(0.6)
        assert receiver.received == []


def test_callback_log_lists_every_attempt(clients, control):
    with Receiver(statuses=[500]) as receiver:
        clients["kie"].submit_ok(callback_url=receiver.url())
        receiver.wait_for(2)
    time.sleep(0.05)
    log = control("GET", "/callbacks").json()["callbacks"]
    assert [(entry["attempt"], entry["status_code"]) for entry in log] == [(1, 500), (2, 200)]
    assert set(log[0]["headers"]) == {"X-Webhook-Timestamp", "X-Webhook-Signature"}
    assert isinstance(json.dumps(log), str)


def test_unreachable_receiver_does_not_break_polling(clients):
    client = clients["vidgo"]
    task_id = client.submit_ok(callback_url=free_port_url())
    assert client.wait_terminal(task_id)["data"]["status"] == "finished"
