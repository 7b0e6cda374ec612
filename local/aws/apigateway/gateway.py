"""One request through the API: stage, route, authorizer, validation, integration; errors as gateway responses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from local.aws.apigateway.access_log import write_access_log
from local.aws.apigateway.authorizers import Authorizers, FindFunction
from local.aws.apigateway.definition import AWS_PROXY, ApiDefinition, Method
from local.aws.apigateway.exchange import Exchange
from local.aws.apigateway.integrations import call_function, mock_response
from local.aws.apigateway.messages import HttpRequest, HttpResponse
from local.aws.apigateway.responses import GatewayError, render
from local.aws.apigateway.routing import match, split_path
from local.aws.apigateway.throttling import Throttling
from local.aws.apigateway.usage_plans import UsagePlans
from local.aws.apigateway.validation import validate

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MISSING_TOKEN = "Missing Authentication Token"  # noqa: S105 (a message, not a secret)
TOO_LARGE = "Request Too Long"
TOO_MANY = "Too Many Requests"


class Gateway:
    def __init__(
        self,
        api: ApiDefinition,
        find_function: FindFunction,
        clock: Callable[[], float] = time.monotonic,
        apigateway: Callable[[], Any] | None = None,
    ):
        self.api = api
        self.authorizers = Authorizers(find_function, clock)
        self.throttling = Throttling(api.default_throttle, api.method_throttles, clock)
        self.usage_plans = UsagePlans(api.usage_plans, apigateway or _apigateway_client, clock)
        self._find = find_function

    def handle(self, request: HttpRequest, *, body_too_large: bool = False) -> HttpResponse:
        exchange = Exchange(request, None)
        try:
            response = self._handle(exchange, body_too_large)
        except GatewayError as error:
            exchange.error_type, exchange.error_message = error.response_type, error.message
            response = render(exchange.api, error, exchange.variables(), request, exchange.path_parameters)
        response.headers += [
            ("x-amzn-RequestId", exchange.request_id),
            ("x-amz-apigw-id", exchange.extended_request_id),
        ]
        if self.api.tracing:
            response.headers.append(("X-Amzn-Trace-Id", exchange.trace))
        exchange.status, exchange.response_length = response.status, len(response.body)
        write_access_log(self.api.access_log_format, exchange)
        return response

    def _handle(self, exchange: Exchange, body_too_large: bool) -> HttpResponse:
        request = exchange.request
        parts = request.path.split("/")
        if len(parts) < 2 or unquote(parts[1]) != self.api.stage:
            # Outside the stage there is no deployed API, so none of its gateway responses apply.
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", MISSING_TOKEN)
        exchange.api = self.api
        inner = "/".join(parts[2:])
        segments = split_path(inner)
        # A trailing slash reaches the same resource; the event's path is the resource's.
        decoded = [unquote(segment) for segment in segments] if segments is not None else [unquote(inner)]
        exchange.path = "/" + "/".join(decoded)
        if body_too_large:
            raise GatewayError("REQUEST_TOO_LARGE", TOO_LARGE)
        method = self._method(exchange, segments)
        if not self.throttling.admit(method.http_method, method.resource_path):
            raise GatewayError("THROTTLED", TOO_MANY)
        if method.authorizer is not None:
            self.authorizers.authorize(method.authorizer, exchange)
        if method.api_key_required:
            headers = request.header_values("x-api-key")
            key = (
                exchange.usage_identifier_key
                if self.api.api_key_source == "AUTHORIZER"
                else (headers[-1] if headers else None)
            )
            exchange.api_key_id = self.usage_plans.admit(key)
        validate(method, request, exchange.path_parameters)
        if method.integration.type == AWS_PROXY:
            return call_function(self._find, method.integration, exchange)
        return mock_response(method.integration)

    def _method(self, exchange: Exchange, segments: list[str] | None) -> Method:
        route = match(self.api.root, segments) if segments is not None else None
        if route is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", MISSING_TOKEN)
        method = route.node.methods.get(exchange.request.method) or route.node.methods.get("ANY")
        if method is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", MISSING_TOKEN)
        exchange.method, exchange.path_parameters = method, route.path_parameters
        return method


def _apigateway_client() -> Any:
    from shared import aws

    return aws.new_client("apigateway")
