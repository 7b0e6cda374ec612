"""Provider exchanges kept as test fixtures, and replayed through an adapter.

`kling-relay probe --submit --record DIR` stores every request and answer of a real run this way; the
adapter tests replay every fixture under tests/events/providers/<provider>/recorded/. A fixture holds the
request (method, path below the API's base URL, JSON body) and the answer (status, content type, body),
both sanitised: keys, tokens, signatures and signed URL queries removed (see `redaction`). It also holds
what the adapter read from that sanitised answer when it was stored (`reading`), so a replay shows
whether the adapter still reads the provider the same way.

Hand-made fixtures of documented shapes sit beside recorded ones; they say so (`"source": "documented"`,
a `documented_` file name) and name the page they come from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from shared.models.common import utcnow
from shared.models.request import JobRequest
from shared.providers.base import Provider
from shared.providers.errors import ProviderError
from shared.providers.redaction import REDACTED, redact, redact_text, sensitive_name
from shared.settings import ProviderEndpoint

Operation = Literal["probe", "submit", "status"]
REPLAY_KEY = "replay-key-0000"
# The request `kling-relay probe --submit` makes: the cheapest job every provider takes as it is.
PROBE_JOB = JobRequest(prompt="a red ball bouncing on a wooden floor, studio light", duration=5)


def sanitized_path(url: str, base_url: str, secrets: tuple[str, ...]) -> str:
    """The request's path below the base URL, keeping query parameters but those that carry secrets."""
    parts = urlsplit(url)
    base_path = urlsplit(base_url).path.rstrip("/")
    path = parts.path.removeprefix(base_path) if base_path else parts.path
    query = [(k, REDACTED if sensitive_name(k) else redact_text(v, secrets)) for k, v in parse_qsl(parts.query)]
    return path + (f"?{urlencode(query)}" if query else "")


def _body(content: bytes, secrets: tuple[str, ...]) -> Any:
    if not content:
        return None
    try:
        return redact(json.loads(content), secrets)
    except (ValueError, RecursionError):
        return redact_text(content.decode("utf-8", errors="replace"), secrets)


def fixture(
    adapter: Provider,
    operation: Operation,
    response: httpx.Response,
    *,
    task_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A sanitised fixture of one exchange, with what the adapter reads from it."""
    known = (adapter.api_key, *secrets)
    request = response.request
    document: dict[str, Any] = {
        "source": "recorded",
        "provider": adapter.name,
        "operation": operation,
        "recorded_at": utcnow().isoformat().replace("+00:00", "Z"),
        "request": {
            "method": request.method,
            "path": sanitized_path(str(request.url), adapter.endpoint.base_url, known),
            "body": _body(request.content, known),
        },
        "response": {
            "status": response.status_code,
            "content_type": response.headers.get("Content-Type", ""),
            "body": _body(response.content, known),
        },
    }
    if task_id is not None:
        document["task_id"] = task_id
    if operation == "submit":
        document["job_request"] = PROBE_JOB.model_dump(mode="json", exclude_none=True)
    document["reading"] = replay(type(adapter), document)
    return document


def replay(adapter_class: type[Provider], document: Mapping[str, Any]) -> dict[str, Any]:
    """What `adapter_class` reads from a fixture's answer, given back for the fixture's own request."""
    answer = document["response"]
    body = answer["body"]
    content = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    asked: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(answer["status"], content=content, headers={"Content-Type": answer["content_type"]})

    endpoint = ProviderEndpoint(base_url="https://provider.example")
    adapter = adapter_class(endpoint, REPLAY_KEY, httpx.Client(transport=httpx.MockTransport(provider)))
    reading = _read(adapter, document)
    if asked:
        sent = asked[0]
        path = sanitized_path(str(sent.url), endpoint.base_url, ())
        recorded = document["request"]
        reading["request_matches"] = (sent.method, path, _body(sent.content, ())) == (
            recorded["method"],
            recorded["path"],
            recorded["body"],
        )
    return reading


def _read(adapter: Provider, document: Mapping[str, Any]) -> dict[str, Any]:
    operation = document["operation"]
    try:
        if operation == "probe":
            report = adapter.probe()
            return {"outcome": report.outcome.value, "balance": report.balance}
        if operation == "submit":
            result = adapter.submit(JobRequest.model_validate(document["job_request"]), None)
            return {"task_id": result.task_id, "raw_status": result.raw_status}
        status = adapter.status(document["task_id"])
    except ProviderError as err:
        return {
            "error": {"kind": err.kind.value, "provider_code": err.provider_code},
            "unrecognized": err.unrecognized,
        }
    return {
        "state": status.state.value,
        "raw_status": status.raw_status,
        "results": len(status.result_urls),
        "error_code": status.error_code,
        "unrecognized": status.unrecognized is not None,
    }
