"""Submit -> status -> success -> download for every provider, with the documented shapes."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from local.provider_emulator import ProviderEmulator
from tests.unit.provider_emulator.helpers import ProviderClient, valid_body

ORDER: dict[str, list[Any]] = {
    "vidgo": ["not_started", "running", "finished"],
    "kie": ["waiting", "queuing", "generating", "success"],
    "aimlapi": ["queued", "generating", "completed"],
    "pixwith": [1, 2],
    "apimart": ["pending", "processing", "completed"],
}


def observe(client: ProviderClient, task_id: str) -> list[dict[str, Any]]:
    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = client.status_json(task_id)
        answers.append(answer)
        if client.raw_state(answer) == ORDER[client.provider][-1]:
            return answers
        time.sleep(0.02)
    raise AssertionError("task did not finish")


def dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def check_download(http: httpx.Client, url: str, task_id: str) -> bytes:
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content[4:8] == b"ftyp"
    assert f"task={task_id}".encode() in response.content
    return response.content


@pytest.mark.parametrize("provider", ["vidgo", "kie", "aimlapi", "pixwith", "apimart"])
def test_states_progress_in_order_and_end_in_success(clients, http, provider):
    client = clients[provider]
    task_id = client.submit_ok()
    answers = observe(client, task_id)
    seen = dedupe([client.raw_state(a) for a in answers])
    order = ORDER[provider]
    assert seen[0] == order[0]
    assert seen[-1] == order[-1]
    assert [s for s in order if s in seen] == seen, f"out of order: {seen}"
    assert len(seen) >= len(order) - (1 if provider == "kie" else 0)  # Kie's "queuing" window is short
    urls = client.result_urls(answers[-1])
    assert len(urls) == 1
    check_download(http, urls[0], task_id)


@pytest.mark.parametrize("provider", ["vidgo", "apimart"])
def test_progress_rises_while_running(clients, provider):
    client = clients[provider]
    task_id = client.submit_ok()
    progress = [a["data"]["progress"] for a in observe(client, task_id)]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100
    assert len({p for p in progress if 0 < p < 100}) >= 2


def test_vidgo_shapes(clients):
    client = clients["vidgo"]
    response = client.submit(valid_body("vidgo"))
    answer = response.json()
    assert answer["code"] == 200
    assert set(answer["data"]) == {"task_id", "status", "created_time"}
    assert re.fullmatch(r"task-unified-\d{10}-[a-z0-9]{8}", answer["data"]["task_id"])
    assert answer["data"]["status"] == "not_started"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", answer["data"]["created_time"])
    done = client.wait_terminal(answer["data"]["task_id"])
    data = done["data"]
    assert set(data) == {"task_id", "status", "files", "created_time", "progress", "error_message"}
    assert data["status"] == "finished"
    assert data["progress"] == 100
    assert data["error_message"] is None
    assert data["created_time"] == answer["data"]["created_time"]
    assert [f["file_type"] for f in data["files"]] == ["video"]


def test_kie_shapes(clients):
    client = clients["kie"]
    body = valid_body("kie", callback_url="http://127.0.0.1:9/hook")
    answer = client.submit(body).json()
    assert answer["code"] == 200
    assert answer["msg"] == "success"
    assert set(answer["data"]) == {"taskId"}
    task_id = answer["data"]["taskId"]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)
    waiting = client.status_json(task_id)["data"]
    assert waiting["resultJson"] is None
    assert waiting["completeTime"] is None
    data = client.wait_terminal(task_id)["data"]
    assert set(data) == {
        "taskId",
        "model",
        "state",
        "param",
        "resultJson",
        "failCode",
        "failMsg",
        "costTime",
        "completeTime",
        "createTime",
    }
    assert data["model"] == "kling-2.6/text-to-video"
    assert isinstance(data["param"], str)
    assert json.loads(data["param"]) == body  # the full original create request
    assert isinstance(data["resultJson"], str)
    assert set(json.loads(data["resultJson"])) == {"resultUrls"}
    assert data["failCode"] is None
    assert data["failMsg"] is None
    assert data["completeTime"] - data["createTime"] == data["costTime"]
    assert data["createTime"] > 1_700_000_000_000  # epoch milliseconds


def test_kie_image_to_video(clients, emulator: ProviderEmulator):
    client = clients["kie"]
    body = {
        "model": "kling-2.6/image-to-video",
        "input": {
            "prompt": "the fox turns",
            "image_urls": [emulator.asset_url("first.png")],
            "sound": True,
            "duration": "10",
        },
    }
    response = client.submit(body)
    assert response.status_code == 200, response.text
    data = client.wait_terminal(response.json()["data"]["taskId"])["data"]
    assert data["model"] == "kling-2.6/image-to-video"


def test_aimlapi_shapes(clients):
    client = clients["aimlapi"]
    answer = client.submit(valid_body("aimlapi")).json()
    assert set(answer) == {"id", "status"}
    assert answer["status"] == "queued"
    assert re.fullmatch(r"[0-9a-f-]{36}:klingai/video-v2-6-pro-text-to-video", answer["id"])
    done = client.wait_terminal(answer["id"])
    assert set(done) == {"id", "status", "video", "error", "meta"}
    assert done["status"] == "completed"
    assert set(done["video"]) == {"url"}
    assert done["error"] is None
    assert done["meta"]["usage"]["credits_used"] > 0


def test_aimlapi_image_to_video_id_names_its_model(clients, emulator: ProviderEmulator):
    client = clients["aimlapi"]
    body = {
        "model": "klingai/video-v2-6-pro-image-to-video",
        "prompt": "the fox turns",
        "image_url": emulator.asset_url("first.png"),
        "duration": 10,
    }
    answer = client.submit(body).json()
    assert answer["id"].endswith(":klingai/video-v2-6-pro-image-to-video")
    assert client.wait_terminal(answer["id"])["status"] == "completed"


def test_pixwith_shapes_and_several_outputs(clients, http, emulator: ProviderEmulator):
    client = clients["pixwith"]
    body = valid_body("pixwith")
    body["options"]["num_outputs"] = 3
    answer = client.submit(body).json()
    assert answer["code"] == 1
    assert answer["message"] == "success"
    assert set(answer["data"]) == {"task_id", "estimated_time"}
    assert re.fullmatch(r"[0-9a-f]{32}", answer["data"]["task_id"])
    assert isinstance(answer["data"]["estimated_time"], int)
    task_id = answer["data"]["task_id"]
    running = client.status_json(task_id)["data"]
    assert running["status"] == 1
    assert running["result_urls"] == []
    data = client.wait_terminal(task_id)["data"]
    assert set(data) == {"task_id", "status", "result_urls"}
    assert data["status"] == 2
    assert len(data["result_urls"]) == 3
    files = [check_download(http, url, task_id) for url in data["result_urls"]]
    assert len(set(files)) == 3


def test_apimart_shapes(clients):
    client = clients["apimart"]
    answer = client.submit(valid_body("apimart")).json()
    assert answer["code"] == 200
    assert isinstance(answer["data"], list)
    assert answer["data"][0]["status"] == "submitted"
    task_id = answer["data"][0]["task_id"]
    assert re.fullmatch(r"task_[0-9A-Z]{26}", task_id)
    pending = client.status_json(task_id)["data"]
    assert "result" not in pending
    data = client.wait_terminal(task_id)["data"]
    assert data["id"] == task_id
    assert data["status"] == "completed"
    video = data["result"]["videos"][0]
    assert isinstance(video["url"], list)
    assert video["expires_at"] == data["created"] + 24 * 3600
    assert data["completed"] >= data["created"]
    assert isinstance(data["actual_time"], int)
    assert "error" not in data


def test_apimart_accepts_language_and_last_frame_in_pro(clients, emulator: ProviderEmulator, http):
    client = clients["apimart"]
    body = {
        "model": "kling-v2-6",
        "prompt": "from dawn to dusk",
        "mode": "pro",
        "image_urls": [emulator.asset_url("first.png"), emulator.asset_url("last.png")],
    }
    response = client.submit(body)
    assert response.status_code == 200, response.text
    task_id = response.json()["data"][0]["task_id"]
    answer = http.get(f"{client.base}/v1/tasks/{task_id}", params={"language": "en"}, headers=client.auth())
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == task_id


def test_sample_frames_are_png(emulator: ProviderEmulator, http):
    for name in ("first.png", "last.png"):
        response = http.get(emulator.asset_url(name))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="no sample asset"):
        emulator.asset_url("middle.png")


def test_interface_addresses(emulator: ProviderEmulator):
    base = emulator.base_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
    assert emulator.provider_base_url("kie") == f"{base}/kie"
    assert emulator.api_key("pixwith") == "emulator-pixwith-key"
    with pytest.raises(ValueError, match="unknown provider"):
        emulator.provider_base_url("openai")


def test_custom_api_keys_replace_the_defaults(http):
    emu = ProviderEmulator(job_seconds=0.2, api_keys={"kie": "my-kie-key"})
    emu.start()
    try:
        client = ProviderClient(emu, http, "kie")
        assert emu.api_key("kie") == "my-kie-key"
        assert client.submit(valid_body("kie")).status_code == 200
        assert client.submit(valid_body("kie"), headers=client.auth("emulator-kie-key")).status_code == 401
    finally:
        emu.stop()
    with pytest.raises(ValueError, match="unknown provider"):
        ProviderEmulator(api_keys={"runway": "k"})
