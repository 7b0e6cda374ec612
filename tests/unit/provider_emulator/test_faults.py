"""Every fault kind except the callback ones (see test_callbacks.py), and how faults are matched."""

from __future__ import annotations

import time

import httpx
import pytest

from local.provider_emulator import ProviderEmulator
from tests.unit.provider_emulator.helpers import PROVIDERS, TERMINAL, ProviderClient, valid_body, view
from tests.unit.provider_emulator.test_rejections import assert_provider_error


def add_fault(control, **fault) -> str:
    response = control("POST", "/faults", fault)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def finished_url(client: ProviderClient, prompt: str = "a red fox running through fresh snow") -> tuple[str, str]:
    task_id = client.submit_ok(prompt)
    client.emulator.finish(task_id, "success")
    return task_id, client.result_urls(client.status_json(task_id))[0]


# -- latency ------------------------------------------------------------------------------------


def used(control, fault_id: str) -> int:
    [entry] = [f for f in control("GET", "/faults").json()["faults"] if f["id"] == fault_id]
    return int(entry["used"])


def test_latency_on_submit_only_slows_submits(clients, control):
    client = clients["kie"]
    fault = add_fault(control, kind="latency", provider="kie", seconds=0.4, on="submit")
    started = time.monotonic()
    task_id = client.submit_ok()
    assert time.monotonic() - started >= 0.4
    assert used(control, fault) == 1
    client.status_json(task_id)
    assert used(control, fault) == 1  # the status query took no pause


def test_latency_on_status_and_download(clients, control, http):
    client = clients["apimart"]
    _, url = finished_url(client)
    on_status = add_fault(control, kind="latency", seconds=0.3, on="status", times=1)
    on_download = add_fault(control, kind="latency", seconds=0.3, on="download", times=1)
    task_id = client.submit_ok()
    assert (used(control, on_status), used(control, on_download)) == (0, 0)  # the submit took no pause
    started = time.monotonic()
    client.status_json(task_id)
    assert time.monotonic() - started >= 0.3
    assert (used(control, on_status), used(control, on_download)) == (1, 0)
    started = time.monotonic()
    assert http.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert (used(control, on_status), used(control, on_download)) == (1, 1)


def test_latency_exceeding_a_client_timeout(clients, control):
    client = clients["vidgo"]
    add_fault(control, kind="latency", provider="vidgo", seconds=1.0, on="any", times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.http.post(
            f"{client.base}/api/generate/submit", json=valid_body("vidgo"), headers=client.auth(), timeout=0.2
        )


# -- submit and status errors -------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [401, 402, 422, 429, 455, 500, 505])
def test_submit_error_in_provider_style(clients, control, provider, status):
    client: ProviderClient = clients[provider]
    add_fault(control, kind="submit_error", provider=provider, status=status, retry_after=7, times=1)
    response = client.submit(valid_body(provider))
    assert response.headers["Retry-After"] == "7"
    if provider == "pixwith":
        expected = {401: "Invalid API KEY", 402: "Credits not enough", 422: "Invalid image url"}.get(status, "")
        assert_provider_error(provider, response, 0, expected)
    else:
        assert_provider_error(provider, response, status)
    assert client.emulator.tasks(provider) == []
    # used up: the next submit goes through
    assert client.submit(valid_body(provider)).json() is not None
    assert len(client.emulator.tasks(provider)) == 1


def test_kie_error_body_code_equals_status(clients, control):
    add_fault(control, kind="submit_error", provider="kie", status=455)
    response = clients["kie"].submit(valid_body("kie"))
    assert response.status_code == 455
    assert response.json() == {"code": 455, "msg": "Service unavailable: system maintenance", "data": None}


def test_pixwith_credits_message(clients, control):
    add_fault(control, kind="submit_error", provider="pixwith", status=402)
    response = clients["pixwith"].submit(valid_body("pixwith"))
    assert response.status_code == 200
    assert response.json() == {"code": 0, "message": "Credits not enough", "data": None}


def test_fault_matches_provider_and_prompt(clients, control):
    add_fault(control, kind="submit_error", provider="kie", match_prompt="[fail-me]", status=500)
    assert clients["kie"].submit(valid_body("kie", prompt="calm lake")).status_code == 200
    assert clients["vidgo"].submit(valid_body("vidgo", prompt="x [fail-me]")).status_code == 200
    assert clients["kie"].submit(valid_body("kie", prompt="x [fail-me] y")).status_code == 500
    assert clients["kie"].submit(valid_body("kie", prompt="again [fail-me]")).status_code == 500  # times: null


def test_fault_times_counts_down(clients, control):
    fault_id = add_fault(control, kind="submit_error", status=429, times=2)
    codes = [clients["aimlapi"].submit(valid_body("aimlapi")).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    [entry] = control("GET", "/faults").json()["faults"]
    assert entry["id"] == fault_id
    assert entry["used"] == 2
    assert entry["remaining"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_error_then_recovery(clients, control, provider):
    client: ProviderClient = clients[provider]
    task_id = client.submit_ok()
    add_fault(control, kind="status_error", provider=provider, status=500, times=2)
    for _ in range(2):
        response = client.status(task_id)
        if provider == "pixwith":
            assert_provider_error(provider, response, 0, "Internal server error")
        else:
            assert_provider_error(provider, response, 500)
    assert client.raw_state(client.status_json(task_id)) is not None
    assert view(client.emulator, task_id).status_queries == 3


def test_status_error_429_with_retry_after(clients, control):
    client = clients["vidgo"]
    task_id = client.submit_ok()
    add_fault(control, kind="status_error", provider="vidgo", status=429, retry_after=3, times=1)
    response = client.status(task_id)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


# -- generation failures ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_generation_failed_uses_the_providers_failure_fields(clients, control, http, provider):
    client: ProviderClient = clients[provider]
    client.emulator.set_job_seconds(0.2)
    add_fault(control, kind="generation_failed", provider=provider, message="content rejected by review", times=1)
    task_id = client.submit_ok()
    answer = client.wait_terminal(task_id)
    if provider == "vidgo":
        assert answer["data"]["status"] == "failed"
        assert answer["data"]["files"] == []
        assert answer["data"]["error_message"] == "content rejected by review"
    elif provider == "kie":
        assert answer["data"]["state"] == "fail"
        assert answer["data"]["failCode"] == "501"
        assert answer["data"]["failMsg"] == "content rejected by review"
        assert answer["data"]["resultJson"] is None
    elif provider == "aimlapi":
        assert answer["status"] == "error"
        assert answer["error"]["message"] == "content rejected by review"
        assert answer["video"] is None
    elif provider == "pixwith":
        assert answer["data"]["status"] == 3
        assert answer["data"]["result_urls"] == []
    else:
        assert answer["data"]["status"] == "failed"
        assert answer["data"]["error"]["message"] == "content rejected by review"
        assert "result" not in answer["data"]
    failed = view(client.emulator, task_id)
    assert failed.state == "failed"
    assert failed.result_urls == []
    # the next task is unaffected (times: 1)
    assert client.raw_state(client.wait_terminal(client.submit_ok())) == TERMINAL[provider][0]
    # a failed task's would-be file is not served
    task = client.emulator.engine.find(task_id)
    assert task is not None
    cdn = f"{client.emulator.base_url}/cdn/{provider}/{task.file_key}/output-0.mp4"
    assert http.get(cdn).status_code == 404


def test_generation_failed_added_while_the_task_runs(clients, control):
    client = clients["kie"]
    task_id = client.submit_ok(prompt="slow pan [doomed]")
    add_fault(control, kind="generation_failed", match_prompt="[doomed]")
    assert client.wait_terminal(task_id)["data"]["state"] == "fail"


# -- downloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404])
def test_result_expired(clients, control, http, status):
    client = clients["pixwith"]
    _, url = finished_url(client)
    add_fault(control, kind="result_expired", provider="pixwith", status=status)
    response = http.get(url)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/xml"
    assert b"<Error><Code>" in response.content


def test_download_slow(clients, control, http):
    client = clients["kie"]
    _, url = finished_url(client)
    fault = add_fault(control, kind="download_slow", bytes_per_second=10_000, times=1)
    started = time.monotonic()
    slow = http.get(url)
    elapsed = time.monotonic() - started
    assert elapsed >= len(slow.content) / 10_000 * 0.95  # about 0.57 s for the 5.7 KB file
    assert used(control, fault) == 1  # used up: the next download is at full speed
    assert http.get(url).content == slow.content


def test_download_truncated_declares_full_length_and_closes_early(clients, control, http):
    client = clients["vidgo"]
    _, url = finished_url(client)
    add_fault(control, kind="download_truncated", after_bytes=1000, times=1)
    received = bytearray()

    def read_all() -> int:
        with http.stream("GET", url) as response:
            for chunk in response.iter_bytes():
                received.extend(chunk)
            return int(response.headers["Content-Length"])

    declared = int(http.head(url).headers["Content-Length"])
    with pytest.raises(httpx.RemoteProtocolError):
        read_all()
    assert len(received) == 1000
    assert declared > 1000
    whole = http.get(url)
    assert len(whole.content) == declared
    assert whole.content[:1000] == bytes(received)


def test_result_size_pads_to_exact_size(clients, control, http):
    client = clients["apimart"]
    add_fault(control, kind="result_size", provider="apimart", bytes=300_000)
    _, url = finished_url(client)
    response = http.get(url)
    assert int(response.headers["Content-Length"]) == 300_000
    assert len(response.content) == 300_000
    assert response.content[4:8] == b"ftyp"


def test_download_counts(clients, http, emulator: ProviderEmulator):
    client = clients["aimlapi"]
    task_id, url = finished_url(client)
    http.get(url)
    http.head(url)  # headers only; not counted
    http.get(url)
    assert view(emulator, task_id).downloads == 2
    assert emulator.stats()["aimlapi"].downloads == 2
