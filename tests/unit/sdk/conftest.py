"""The SDK against mocked HTTP: jobs as the API's own models render them, and clients on mock transports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from kling_relay import AsyncKlingRelay, KlingRelay, _http

from shared.models.common import JobStatus, utcnow
from shared.models.job import JobView, OutputView
from tests.fixtures.jobs import build_job

BASE_URL = "https://relay.test/v1"
API_KEY = "kr_test_key"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
STORAGE_URL = "https://bucket.test/archive/video.mp4?X-Amz-Signature=abc"

Handler = Callable[[httpx.Request], httpx.Response]


def job_json(status: JobStatus = JobStatus.QUEUED, *, video: bytes | None = None, **changes: Any) -> dict[str, Any]:
    """A job exactly as `GET /v1/jobs/{id}` renders it (the API's own JobView), with outputs when given a video."""
    record = build_job(status=status, provider_task_id="task-1")
    outputs = []
    if video is not None:
        outputs.append(
            OutputView(
                url=STORAGE_URL,
                expires_at=utcnow() + timedelta(hours=1),
                bytes=len(video),
                sha256=hashlib.sha256(video).hexdigest(),
                content_type="video/mp4",
            )
        )
    view = JobView(**record.public_fields(), outputs=outputs)
    data: dict[str, Any] = json.loads(view.model_dump_json())
    data.update(changes)
    return data


def error_json(code: str, message: str = "no", details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class Recorder:
    """A mock API: answers from a handler, keeping every request it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)


def answers(*responses: httpx.Response | Exception) -> Handler:
    """A handler giving these answers in turn (an exception is raised as the transport's failure)."""
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handle


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause the SDK takes, recorded instead of slept."""
    taken: list[float] = []

    async def asleep(seconds: float) -> None:
        taken.append(seconds)

    monkeypatch.setattr(_http, "_sleep", taken.append)
    monkeypatch.setattr(_http, "_asleep", asleep)
    return taken


@pytest.fixture
def client() -> Iterator[Callable[[Handler], tuple[KlingRelay, Recorder]]]:
    made: list[KlingRelay] = []

    def make(handler: Handler, **options: Any) -> tuple[KlingRelay, Recorder]:
        recorder = Recorder(handler)
        relay = KlingRelay(
            BASE_URL, API_KEY, http_client=httpx.Client(transport=httpx.MockTransport(recorder)), **options
        )
        made.append(relay)
        return relay, recorder

    yield make
    for relay in made:
        relay._http.close()


def async_client(handler: Handler, **options: Any) -> tuple[AsyncKlingRelay, Recorder]:
    recorder = Recorder(handler)
    relay = AsyncKlingRelay(
        BASE_URL, API_KEY, http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)), **options
    )
    return relay, recorder
