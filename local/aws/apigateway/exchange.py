"""The state of one request as it passes through the gateway, and its `$context` variables."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.aws.apigateway.definition import ApiDefinition, Method
from local.aws.apigateway.messages import HttpRequest
from local.aws.template import ACCOUNT_ID, REGION

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def request_time(moment: datetime) -> str:
    """`21/Nov/2026:10:00:00 +0000`, in English whatever the locale."""
    return f"{moment:%d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"


def trace_id(epoch: float) -> str:
    return f"Root=1-{int(epoch):08x}-{secrets.token_hex(12)}"


@dataclass
class Exchange:
    request: HttpRequest
    api: ApiDefinition | None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    extended_request_id: str = field(
        default_factory=lambda: base64.b64encode(secrets.token_bytes(12)).decode().rstrip("=")
    )
    epoch: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    trace: str = ""
    method: Method | None = None
    path: str = ""  # the request path inside the stage
    path_parameters: dict[str, str] = field(default_factory=dict)
    authorizer: dict[str, Any] | None = None  # context + principalId, once authorized
    authorizer_status: int | None = None
    usage_identifier_key: str | None = None  # what the authorizer named (apiKeySource AUTHORIZER)
    api_key_id: str | None = None  # the API key the request was counted under
    authorizer_latency_ms: int | None = None
    integration_latency_ms: int | None = None
    integration_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    status: int | None = None
    response_length: int | None = None

    def __post_init__(self) -> None:
        if not self.trace:
            self.trace = trace_id(self.epoch)

    @property
    def stage(self) -> str:
        return self.api.stage if self.api else ""

    @property
    def resource_path(self) -> str:
        return self.method.resource_path if self.method else ""

    @property
    def resource_id(self) -> str:
        return self.method.resource_id if self.method else ""

    @property
    def epoch_ms(self) -> int:
        return int(self.epoch * 1000)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def method_arn(self) -> str:
        api_id = self.api.api_id if self.api else ""
        return (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api_id}/{self.stage}/"
            f"{self.request.method}/{self.path.lstrip('/')}"
        )

    def variables(self) -> dict[str, str]:
        """`$context.*` values by name (without the `context.` prefix); absent ones are left out."""
        request = self.request
        found: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.api.api_id if self.api else None,
            "domainName": request.domain_name,
            "domainPrefix": request.domain_name.split(".", 1)[0],
            "extendedRequestId": self.extended_request_id,
            "httpMethod": request.method,
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header("User-Agent"),
            "path": f"/{self.stage}{self.path}" if self.api else request.path,
            "protocol": request.protocol,
            "requestId": self.request_id,
            "requestTime": request_time(datetime.fromtimestamp(self.epoch, UTC)),
            "requestTimeEpoch": self.epoch_ms,
            "resourceId": self.resource_id or None,
            "resourcePath": self.resource_path or None,
            "stage": self.stage or None,
            "status": self.status,
            "responseLength": self.response_length,
            "responseLatency": self.elapsed_ms(),
            "integrationLatency": self.integration_latency_ms,
            "integration.status": self.integration_status,
            "authorizer.status": self.authorizer_status,
            "authorizer.latency": self.authorizer_latency_ms,
            "error.message": self.error_message,
            "error.responseType": self.error_type,
            "xrayTraceId": self.trace,
        }
        for key, value in (self.authorizer or {}).items():
            found[f"authorizer.{key}"] = value
        return {key: str(value) for key, value in found.items() if value is not None}
