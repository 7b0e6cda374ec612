"""Lambda events built from the JSON fixtures in tests/events/lambda, with the parts a test changes."""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

EVENTS = Path(__file__).resolve().parent.parent / "events" / "lambda"


@cache
def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_fixture(name))


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    tenant: str | None = "tenant-a",
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    event = fixture("api_gateway_rest.json")
    parts = urlsplit(path)
    event["httpMethod"] = method
    event["path"] = parts.path
    event["resource"] = resource or parts.path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/v1{parts.path}"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    query = dict(parse_qsl(parts.query))
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    event["pathParameters"] = path_parameters
    if tenant is None:
        event["requestContext"]["authorizer"] = None
    else:
        event["requestContext"]["authorizer"]["tenant_id"] = tenant
    event["headers"].update(headers or {})
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def answer(result: dict[str, Any]) -> HttpAnswer:
    raw = result.get("body") or ""
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        body = raw
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[-1]
    return HttpAnswer(status=result["statusCode"], headers=headers, body=body)


def stream_record(new_image: dict[str, Any], old_image: dict[str, Any] | None, sequence: int = 1) -> dict[str, Any]:
    record = fixture("dynamodb_stream_record.json")
    record["eventName"] = "INSERT" if old_image is None else "MODIFY"
    record["eventID"] = str(sequence)
    record["dynamodb"]["NewImage"] = new_image
    record["dynamodb"]["SequenceNumber"] = str(sequence)
    if old_image is None:
        del record["dynamodb"]["OldImage"]
    else:
        record["dynamodb"]["OldImage"] = old_image
    return record


def sqs_record(
    body: str,
    attributes: dict[str, str],
    receive_count: int = 1,
    message_id: str = "m-1",
    sent_at: float | None = None,
) -> dict[str, Any]:
    """An SQS event record; `sent_at` (epoch seconds, default now) is when the message was queued."""
    record = fixture("sqs_record.json")
    record["messageId"] = message_id
    record["body"] = body
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    record["attributes"]["SentTimestamp"] = str(int((time.time() if sent_at is None else sent_at) * 1000))
    record["messageAttributes"] = {
        name: {"stringValue": value, "dataType": "String", "stringListValues": [], "binaryListValues": []}
        for name, value in attributes.items()
    }
    return record


class FakeContext:
    function_name = "kling-relay-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:kling-relay-test"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/kling-relay-test"
    log_stream_name = "stream"

    def __init__(self, remaining_ms: int = 29_000) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms
