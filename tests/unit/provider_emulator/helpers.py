"""Test helpers: valid request bodies per provider, a client speaking each API, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from local.provider_emulator import ProviderEmulator
from local.provider_emulator.tasks import TaskView

PROVIDERS = ("vidgo", "kie", "aimlapi", "pixwith", "apimart")
CALLBACK_PROVIDERS = ("vidgo", "kie")
TERMINAL = {
    "vidgo": ("finished", "failed"),
    "kie": ("success", "fail"),
    "aimlapi": ("completed", "error"),
    "pixwith": (2, 3),
    "apimart": ("completed", "failed"),
}


def valid_body(
    provider: str, prompt: str = "a red fox running through fresh snow", callback_url: str | None = None
) -> dict[str, Any]:
    if provider == "vidgo":
        body: dict[str, Any] = {
            "model": "kling-2.6",
            "input": {"prompt": prompt, "sound": True, "aspect_ratio": "16:9", "duration": 5},
        }
        if callback_url:
            body["callback_url"] = callback_url
        return body
    if provider == "kie":
        body = {
            "model": "kling-2.6/text-to-video",
            "input": {"prompt": prompt, "sound": False, "aspect_ratio": "16:9", "duration": "5"},
        }
        if callback_url:
            body["callBackUrl"] = callback_url
        return body
    if provider == "aimlapi":
        return {
            "model": "klingai/video-v2-6-pro-text-to-video",
            "prompt": prompt,
            "aspect_ratio": "16:9",
            "duration": 5,
            "generate_audio": False,
        }
    if provider == "pixwith":
        return {
            "prompt": prompt,
            "model_id": "2-33",
            "options": {
                "prompt_optimization": False,
                "num_outputs": 1,
                "sound": True,
                "aspect_ratio": "16:9",
                "duration": 5,
            },
        }
    assert provider == "apimart"
    return {
        "model": "kling-v2-6",
        "prompt": prompt,
        "mode": "pro",
        "duration": 5,
        "aspect_ratio": "16:9",
        "audio": True,
    }


class ProviderClient:
    """Speaks one emulated provider's API the way a real client would."""

    def __init__(self, emulator: ProviderEmulator, http: httpx.Client, provider: str) -> None:
        self.emulator = emulator
        self.http = http
        self.provider = provider
        self.base = emulator.provider_base_url(provider)

    def auth(self, key: str | None = None) -> dict[str, str]:
        key = self.emulator.api_key(self.provider) if key is None else key
        if self.provider == "pixwith":
            return {"Api-Key": key}
        return {"Authorization": f"Bearer {key}"}

    def submit(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        path = {
            "vidgo": "/api/generate/submit",
            "kie": "/api/v1/jobs/createTask",
            "aimlapi": "/v2/video/generations",
            "pixwith": "/api/task/create",
            "apimart": "/v1/videos/generations",
        }[self.provider]
        return self.http.post(self.base + path, json=body, headers=self.auth() if headers is None else headers)

    def submit_ok(self, prompt: str = "a red fox running through fresh snow", callback_url: str | None = None) -> str:
        response = self.submit(valid_body(self.provider, prompt, callback_url))
        assert response.status_code == 200, response.text
        return self.task_id(response.json())

    def task_id(self, answer: dict[str, Any]) -> str:
        if self.provider == "kie":
            return str(answer["data"]["taskId"])
        if self.provider == "aimlapi":
            return str(answer["id"])
        if self.provider == "apimart":
            return str(answer["data"][0]["task_id"])
        return str(answer["data"]["task_id"])

    def status(self, task_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        auth = self.auth() if headers is None else headers
        if self.provider == "vidgo":
            return self.http.get(f"{self.base}/api/generate/status/{task_id}", headers=auth)
        if self.provider == "kie":
            return self.http.get(f"{self.base}/api/v1/jobs/recordInfo", params={"taskId": task_id}, headers=auth)
        if self.provider == "aimlapi":
            return self.http.get(f"{self.base}/v2/video/generations", params={"generation_id": task_id}, headers=auth)
        if self.provider == "pixwith":
            return self.http.post(f"{self.base}/api/task/get", json={"task_id": task_id}, headers=auth)
        return self.http.get(f"{self.base}/v1/tasks/{task_id}", headers=auth)

    def status_json(self, task_id: str) -> dict[str, Any]:
        response = self.status(task_id)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def raw_state(self, answer: dict[str, Any]) -> Any:
        if self.provider == "kie":
            return answer["data"]["state"]
        if self.provider == "aimlapi":
            return answer["status"]
        return answer["data"]["status"]

    def result_urls(self, answer: dict[str, Any]) -> list[str]:
        if self.provider == "vidgo":
            return [f["file_url"] for f in answer["data"]["files"] if f["file_type"] == "video"]
        if self.provider == "kie":
            return list(json.loads(answer["data"]["resultJson"])["resultUrls"])
        if self.provider == "aimlapi":
            return [answer["video"]["url"]]
        if self.provider == "pixwith":
            return list(answer["data"]["result_urls"])
        return [u for video in answer["data"]["result"]["videos"] for u in video["url"]]

    def wait_terminal(self, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.status_json(task_id)
            if self.raw_state(answer) in TERMINAL[self.provider]:
                return answer
            time.sleep(0.03)
        raise AssertionError(f"{self.provider} task {task_id} did not end within {timeout} s")


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float


class Receiver:
    """A tiny webhook receiver on 127.0.0.1: records every POST and answers the scripted statuses in
    order (then 200), optionally holding each answer until `hold` is set."""

    def __init__(self, statuses: Iterable[int] = (), hold: threading.Event | None = None) -> None:
        self.statuses = list(statuses)
        self.hold = hold
        self.received: list[Received] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            parts.path, parse_qs(parts.query), dict(self.headers.items()), json.loads(raw), time.time()
                        )
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver._lock.notify_all()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook", **query: str) -> str:
        host, port = str(self.server.server_address[0]), self.server.server_address[1]
        suffix = f"?{urlencode(query)}" if query else ""
        return f"http://{host}:{port}{path}{suffix}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} callbacks, got {len(self.received)} within {timeout} s")
            return list(self.received)


def view(emulator: ProviderEmulator, task_id: str) -> TaskView:
    found = emulator.task(task_id)
    assert found is not None, f"no task {task_id}"
    return found


def free_port_url() -> str:
    """A loopback URL nobody listens on (the port was bound and released)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = str(server.server_address[0]), server.server_address[1]
    server.server_close()
    return f"http://{host}:{port}/hook"
