"""The /_control API: faults, tasks, forced endings, counters, timing, reset; and the standalone CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import httpx

from local.provider_emulator import ProviderEmulator
from tests.unit.provider_emulator.helpers import ProviderClient, valid_body


def test_index_describes_every_provider(control, emulator: ProviderEmulator):
    info = control("GET", "").json()
    assert info["base_url"] == emulator.base_url
    assert set(info["providers"]) == {"vidgo", "kie", "aimlapi", "pixwith", "apimart"}
    assert info["providers"]["kie"] == {
        "base_url": f"{emulator.base_url}/kie",
        "api_key": "emulator-kie-key",
        "callbacks": True,
    }
    assert info["providers"]["pixwith"]["callbacks"] is False
    assert info["assets"]["first.png"] == emulator.asset_url("first.png")
    assert info["kie_signing"] is True


def test_fault_crud(control):
    first = control("POST", "/faults", {"kind": "latency", "seconds": 0.1}).json()["id"]
    second = control("POST", "/faults", {"kind": "callback_drop", "provider": "kie", "times": 2}).json()["id"]
    listed = control("GET", "/faults").json()["faults"]
    assert [f["id"] for f in listed] == [first, second]
    assert listed[0]["fault"] == {
        "kind": "latency",
        "provider": None,
        "match_prompt": None,
        "times": None,
        "seconds": 0.1,
        "on": "any",
    }
    assert listed[0]["remaining"] is None
    assert listed[1]["remaining"] == 2
    assert control("DELETE", f"/faults/{first}").json() == {"deleted": 1}
    assert control("DELETE", f"/faults/{first}").status_code == 404
    assert control("DELETE", "/faults").json() == {"deleted": 1}
    assert control("GET", "/faults").json() == {"faults": []}


def test_invalid_faults_are_refused_with_the_reason(control):
    cases = [
        ({"kind": "meteor_strike"}, "kind"),
        ({"kind": "latency"}, "seconds"),
        ({"kind": "latency", "seconds": 1, "sconds": 2}, "sconds"),
        ({"kind": "submit_error", "status": 418}, "status"),
        ({"kind": "latency", "seconds": 1, "provider": "runway"}, "provider"),
        ({"kind": "latency", "seconds": 1, "times": 0}, "times"),
        ({"kind": "download_truncated", "after_bytes": -1}, "after_bytes"),
    ]
    for fault, field in cases:
        response = control("POST", "/faults", fault)
        assert response.status_code == 422, fault
        assert field in response.json()["error"], response.json()
    bad_json = control("POST", "/faults", content=b"{", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400


def test_task_views(clients, control, emulator: ProviderEmulator):
    kie: ProviderClient = clients["kie"]
    aiml: ProviderClient = clients["aimlapi"]
    body = valid_body("kie", prompt="orbiting camera", callback_url="http://127.0.0.1:9/cb?token=t")
    kie_id = kie.submit(body).json()["data"]["taskId"]
    aiml_id = aiml.submit_ok()
    kie.status_json(kie_id)
    kie.status_json(kie_id)

    all_tasks = control("GET", "/tasks").json()["tasks"]
    assert {t["task_id"] for t in all_tasks} == {kie_id, aiml_id}
    [only_kie] = control("GET", "/tasks", params={"provider": "kie"}).json()["tasks"]
    assert only_kie["task_id"] == kie_id
    assert control("GET", "/tasks", params={"provider": "nobody"}).status_code == 400

    view = control("GET", f"/tasks/{kie_id}").json()
    assert view["provider"] == "kie"
    assert view["state"] in ("queued", "running")
    assert view["provider_status"] in ("waiting", "queuing", "generating")
    assert view["submitted"] == body
    assert view["prompt"] == "orbiting camera"
    assert view["callback_url"] == "http://127.0.0.1:9/cb?token=t"
    assert view["status_queries"] == 2
    assert view["finished_at"] is None
    assert view["created_at"] <= time.time()
    assert view["callback_attempts"] == []

    # AI/ML ids hold ":" and "/": percent-encoded or raw, both resolve
    assert control("GET", f"/tasks/{quote(aiml_id, safe='')}").json()["task_id"] == aiml_id
    assert control("GET", f"/tasks/{aiml_id}").json()["task_id"] == aiml_id
    assert control("GET", "/tasks/unknown").status_code == 404


def test_finish_forces_an_ending(clients, control, emulator: ProviderEmulator):
    emulator.set_job_seconds(60)
    client: ProviderClient = clients["aimlapi"]
    ok_id = client.submit_ok()
    fail_id = client.submit_ok()
    done = control("POST", f"/tasks/{quote(ok_id, safe='')}/finish", {"outcome": "success"}).json()
    assert done["state"] == "succeeded"
    assert len(done["result_urls"]) == 1
    assert client.status_json(ok_id)["status"] == "completed"
    failed = control("POST", f"/tasks/{fail_id}/finish", {"outcome": "fail", "message": "quota"}).json()
    assert failed["state"] == "failed"
    assert client.status_json(fail_id)["error"]["message"] == "quota"
    # an ended task keeps its ending
    again = control("POST", f"/tasks/{fail_id}/finish", {"outcome": "success"}).json()
    assert again["state"] == "failed"
    assert control("POST", "/tasks/nope/finish", {"outcome": "success"}).status_code == 404
    assert control("POST", f"/tasks/{ok_id}/finish", {"outcome": "maybe"}).status_code == 422


def test_stats(clients, control, http, emulator: ProviderEmulator):
    client: ProviderClient = clients["vidgo"]
    task_id = client.submit_ok()
    client.submit(valid_body("vidgo"), headers={})
    client.status_json(task_id)
    emulator.finish(task_id, "success")
    http.get(client.result_urls(client.status_json(task_id))[0])
    stats = control("GET", "/stats").json()
    assert stats["vidgo"] == {
        "submits": 2,
        "submits_accepted": 1,
        "submits_rejected": 1,
        "submits_rate_limited": 0,
        "status_queries": 2,
        "downloads": 1,
        "callbacks": 0,
        "callbacks_delivered": 0,
    }
    assert stats["kie"]["submits"] == 0


def test_config_changes_job_time_per_provider(clients, control):
    config = control("PUT", "/config", {"provider_job_seconds": {"pixwith": 30}}).json()
    assert config["provider_job_seconds"] == {"pixwith": 30}
    slow = clients["pixwith"].submit_ok()
    fast = clients["kie"].submit_ok()
    assert clients["kie"].wait_terminal(fast)["data"]["state"] == "success"
    assert clients["pixwith"].status_json(slow)["data"]["status"] == 1
    assert clients["pixwith"].submit(valid_body("pixwith")).json()["data"]["estimated_time"] == 30
    config = control("PUT", "/config", {"provider_job_seconds": {"pixwith": None}, "job_seconds": 0.25}).json()
    assert config["provider_job_seconds"] == {}
    assert config["job_seconds"] == 0.25
    assert control("PUT", "/config", {"job_seconds": -1}).json()["field"] == "job_seconds"
    assert control("PUT", "/config", {"provider_job_seconds": {"kie": 99999}}).status_code == 400
    assert control("PUT", "/config", {"speed": "fast"}).status_code == 400


def test_reset_forgets_everything(clients, control):
    clients["kie"].submit_ok()
    control("POST", "/faults", {"kind": "latency", "seconds": 1})
    assert control("POST", "/reset").json() == {"reset": True}
    assert control("GET", "/tasks").json() == {"tasks": []}
    assert control("GET", "/faults").json() == {"faults": []}
    assert control("GET", "/stats").json()["kie"]["submits"] == 0


def test_unknown_control_route(control):
    assert control("GET", "/nothing").status_code == 404
    assert control("PATCH", "/faults").status_code == 405
    assert control("PUT", "/faults").status_code == 405


def test_standalone_command():
    process = subprocess.Popen(
        [sys.executable, "-m", "local.provider_emulator", "--port", "0", "--job-seconds", "0.2", "--kie-hmac-key", "k"],
        cwd=os.getcwd(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            if line.rstrip("\n") == "}":  # the end of the top-level JSON object
                break
        text = "".join(lines)
        info = json.loads(text[text.index("{") :])
        assert info["kie_signing"] is True
        with httpx.Client(trust_env=False) as http:
            emu_info = http.get(info["control_url"]).json()
            assert emu_info == info
            key = info["providers"]["kie"]["api_key"]
            response = http.post(
                info["providers"]["kie"]["base_url"] + "/api/v1/jobs/createTask",
                json=valid_body("kie"),
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
