"""What every provider adapter test needs: fixtures by name, a recording mock transport, and each provider's
contract case (where its answers keep the task id and status, a request it cannot honour, its auth header)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.models.common import ProviderName
from shared.providers.aimlapi import AimlapiProvider
from shared.providers.apimart import ApimartProvider
from shared.providers.base import Provider
from shared.providers.kie import KieProvider
from shared.providers.pixwith import PixwithProvider
from shared.providers.vidgo import VidgoProvider
from shared.settings import DEFAULT_BASE_URLS, ProviderEndpoint

EVENTS = Path(__file__).resolve().parents[2] / "events" / "providers"

Answer = httpx.Response | Exception | type[httpx.TransportError]


def event(provider: ProviderName, name: str) -> dict[str, Any]:
    """A JSON fixture from tests/events/providers/<provider>/."""
    loaded: dict[str, Any] = json.loads((EVENTS / provider / f"{name}.json").read_text())
    return loaded


def ok(body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


class Recorder:
    """A mock transport handler that answers from a list (raising exceptions, or transport error classes as
    if the network did) and keeps every request it saw."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, Exception):
            raise answer
        raise answer("simulated", request=request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def sent_json(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


def build(
    adapter: type[Provider], api_key: str, *answers: Answer, base_url: str | None = None, **options: Any
) -> tuple[Any, Recorder]:
    """An adapter whose client answers from `answers`, and the recorder of what it sent."""
    recorder = Recorder(*answers)
    endpoint = ProviderEndpoint(base_url=base_url or DEFAULT_BASE_URLS[adapter.name])
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    return adapter(endpoint, api_key, http, **options), recorder


def _at(path: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The object inside an answer that holds the fields at `path` (the answer itself for an empty path)."""

    def find(answer: dict[str, Any]) -> dict[str, Any]:
        node = answer
        for key in path:
            node = node[key]
        return node

    return find


@dataclass(frozen=True)
class ProviderCase:
    """One provider's documented shapes, as far as the shared contract needs them."""

    name: ProviderName
    adapter: type[Provider]
    api_key: str
    task_id: str
    submit_fixture: str
    status_fixture: str  # a task still in progress
    record_path: tuple[str, ...]  # where the task object sits in a status answer
    task_id_key: str
    status_key: str
    unknown_status: object  # a status value no document shows
    unsupported: dict[str, Any]  # one request field this provider cannot honour
    auth: tuple[str, str]
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    def build(self, *answers: Answer) -> tuple[Provider, Recorder]:
        provider, recorder = build(self.adapter, self.api_key, *answers, **self.options)
        return provider, recorder

    def submit_answer(self) -> dict[str, Any]:
        return event(self.name, self.submit_fixture)

    def status_answer(self, **changes: Any) -> dict[str, Any]:
        """The in-progress status answer; `task_id=None` drops the id, other keys replace fields."""
        answer = copy.deepcopy(event(self.name, self.status_fixture))
        record = _at(self.record_path)(answer)
        for key, value in changes.items():
            target = {"task_id": self.task_id_key, "status": self.status_key}.get(key, key)
            if value is None:
                record.pop(target, None)
            else:
                record[target] = value
        return answer


CASES = (
    ProviderCase(
        name="vidgo",
        adapter=VidgoProvider,
        api_key="vidgo-test-key",
        task_id="task-unified-1757165031-uyujaw3d",
        submit_fixture="submit_ok",
        status_fixture="status_running",
        record_path=("data",),
        task_id_key="task_id",
        status_key="status",
        unknown_status="paused_for_review",
        unsupported={"negative_prompt": "blur"},
        auth=("Authorization", "Bearer vidgo-test-key"),
    ),
    ProviderCase(
        name="kie",
        adapter=KieProvider,
        api_key="kie-test-key",
        task_id="281e5b0a4c7d4f1e9b3a6c2d8e0f39b9",
        submit_fixture="submit_ok",
        status_fixture="record_generating",
        record_path=("data",),
        task_id_key="taskId",
        status_key="state",
        unknown_status="postprocessing",
        unsupported={"negative_prompt": "blur"},
        auth=("Authorization", "Bearer kie-test-key"),
    ),
    ProviderCase(
        name="aimlapi",
        adapter=AimlapiProvider,
        api_key="aiml-test-key",
        task_id="bfb9eca8-178f-41ca-a1f1-6e4551157a0b:klingai/video-v2-6-pro-text-to-video",
        submit_fixture="submit_accepted",
        status_fixture="status_generating",
        record_path=(),
        task_id_key="id",
        status_key="status",
        unknown_status="rendering",
        unsupported={"num_outputs": 2},
        auth=("Authorization", "Bearer aiml-test-key"),
    ),
    ProviderCase(
        name="pixwith",
        adapter=PixwithProvider,
        api_key="key_00000000000000000000000000000000",
        task_id="d425ab4dc256f0ebaa84862b9cea8a3d",
        submit_fixture="submit_accepted",
        status_fixture="status_processing",
        record_path=("data",),
        task_id_key="task_id",
        status_key="status",
        unknown_status=7,
        unsupported={"negative_prompt": "blur"},
        auth=("Api-Key", "key_00000000000000000000000000000000"),
    ),
    ProviderCase(
        name="apimart",
        adapter=ApimartProvider,
        api_key="sk-apimart-test",
        task_id="task_01K8SGYNNNVBQTXNR4MM964S7K",
        submit_fixture="submit_accepted",
        status_fixture="status_processing",
        record_path=("data",),
        task_id_key="id",
        status_key="status",
        unknown_status="moderating",
        unsupported={"cfg_scale": 0.5},
        auth=("Authorization", "Bearer sk-apimart-test"),
    ),
)
CASE_BY_NAME = {case.name: case for case in CASES}
