"""Integrations: Lambda proxy (AWS_PROXY) calls and MOCK responses."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from local.aws.apigateway.authorizers import FindFunction, Invocable
from local.aws.apigateway.definition import Integration
from local.aws.apigateway.events import MalformedProxyResponseError, parse_proxy_result, proxy_event
from local.aws.apigateway.exchange import Exchange
from local.aws.apigateway.messages import HttpResponse
from local.aws.apigateway.responses import GatewayError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error"
TIMED_OUT = "Endpoint request timed out"
# A Lambda error has no response type of its own: API Gateway answers 502 (500 when the call itself is
# refused) with "Internal server error", through the API's DEFAULT_5XX response where it has one.
# Headers API Gateway owns: a function's values for them come back renamed, as on AWS.
REMAPPED = {"authorization", "connection", "content-length", "date", "server", "transfer-encoding", "www-authenticate"}


class _Call:
    """One function invocation on its own thread, so the gateway can give up after the integration timeout."""

    def __init__(self, function: Invocable, event: dict[str, Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._function = function
        self._event = event
        self._done = threading.Event()
        threading.Thread(target=self._run, name="apigateway-integration", daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._function.invoke(self._event)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting request as the function's error)
            self.error = exc
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        return self._done.wait(seconds)


def call_function(find_function: FindFunction, integration: Integration, exchange: Exchange) -> HttpResponse:
    assert exchange.api is not None
    assert integration.function_arn is not None
    if not exchange.api.may_invoke(integration.function_arn, exchange.method_arn()):
        log.warning(
            "no Lambda permission lets API Gateway call %s for %s", integration.function_arn, exchange.method_arn()
        )
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500)
    try:
        function = find_function(integration.function_arn)
    except KeyError as exc:
        log.warning("function %s is not deployed", integration.function_arn)
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500) from exc
    started = time.monotonic()
    call = _Call(function, proxy_event(exchange))
    finished = call.wait(integration.timeout_ms / 1000)
    exchange.integration_latency_ms = int((time.monotonic() - started) * 1000)
    if not finished:
        exchange.integration_status = 504
        raise GatewayError("INTEGRATION_TIMEOUT", TIMED_OUT)
    if call.error is not None:
        log.warning("function %s failed: %r", integration.function_arn, call.error)
        exchange.integration_status = 200
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=502)
    exchange.integration_status = 200
    try:
        status, headers, body = parse_proxy_result(call.result)
    except MalformedProxyResponseError as exc:
        log.warning("function %s: %s", integration.function_arn, exc)
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=502) from exc
    renamed = [(f"x-amzn-Remapped-{name}" if name.lower() in REMAPPED else name, value) for name, value in headers]
    return HttpResponse(status, renamed, body)


def mock_response(integration: Integration) -> HttpResponse:
    """The integration response selected for the mock's status code (or the default one)."""
    status = str(integration.mock_status)
    chosen = next(
        (r for r in integration.responses if r.selection_pattern and re.fullmatch(r.selection_pattern, status)),
        next((r for r in integration.responses if r.selection_pattern is None), None),
    )
    if chosen is None:
        log.warning("MOCK integration has no integration response for status %s", status)
        raise GatewayError("DEFAULT_5XX", INTERNAL_ERROR, status=500)
    headers = [("Content-Type", "application/json"), *chosen.headers.items()]
    return HttpResponse(chosen.status, headers, chosen.body.encode())
