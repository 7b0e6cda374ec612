"""Lambda authorizers (REQUEST and TOKEN): identity sources, the result cache, and the policy decision."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from local.aws.apigateway.definition import Authorizer, IdentitySource
from local.aws.apigateway.events import request_authorizer_event, token_authorizer_event
from local.aws.apigateway.exchange import Exchange
from local.aws.apigateway.policy import Decision, PolicyDocument, evaluate
from local.aws.apigateway.responses import GatewayError
from local.aws.template import ACCOUNT_ID, REGION

log = logging.getLogger(__name__)

UNAUTHORIZED_MESSAGE = "Unauthorized"  # an authorizer raising exactly this gets a 401
NOT_ALLOWED = "User is not authorized to access this resource"
EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"


class Invocable(Protocol):
    def invoke(self, event: Any) -> Any: ...


FindFunction = Callable[[str], Invocable]
ContextValue = StrictStr | int | float | StrictBool


class AuthorizerOutput(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    principal_id: StrictStr = Field(alias="principalId")
    policy_document: PolicyDocument = Field(alias="policyDocument")
    context: dict[str, ContextValue] | None = None
    # With the API's apiKeySource AUTHORIZER: the API key whose usage plan throttles and counts the request.
    usage_identifier_key: StrictStr | None = Field(default=None, alias="usageIdentifierKey")

    def request_context(self) -> dict[str, str]:
        """`context` values reach a REST API's function as strings, with `principalId` added."""
        found = {
            key: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for key, value in (self.context or {}).items()
        }
        found["principalId"] = self.principal_id
        return found


@dataclass
class _Cached:
    expires: float
    output: AuthorizerOutput


def identity_value(source: IdentitySource, exchange: Exchange) -> str | None:
    request = exchange.request
    if source.location in ("header", "multivalueheader"):
        values = request.header_values(source.name)
    elif source.location in ("querystring", "multivaluequerystring"):
        values = request.query_values(source.name)
    else:
        stage_variables = exchange.api.stage_variables if exchange.api else {}
        values = [stage_variables[source.name]] if source.name in stage_variables else []
    values = [value for value in values if value]
    if not values:
        return None
    return ",".join(values) if source.location.startswith("multivalue") else values[-1]


class Authorizers:
    def __init__(self, find_function: FindFunction, clock: Callable[[], float] = time.monotonic) -> None:
        self._find = find_function
        self._clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], _Cached] = {}
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def authorize(self, authorizer: Authorizer, exchange: Exchange) -> None:
        """Sets `exchange.authorizer` (context + principalId) or raises the GatewayError API Gateway answers."""
        started = time.monotonic()
        try:
            output = self._output(authorizer, exchange)
            decision = evaluate(output.policy_document, exchange.method_arn())
        except GatewayError as error:
            exchange.authorizer_status = error.status or (401 if error.response_type == "UNAUTHORIZED" else 500)
            raise
        finally:
            exchange.authorizer_latency_ms = int((time.monotonic() - started) * 1000)
        if decision is not Decision.ALLOW:
            exchange.authorizer_status = 403
            message = EXPLICIT_DENY if decision is Decision.EXPLICIT_DENY else NOT_ALLOWED
            raise GatewayError("ACCESS_DENIED", message)
        exchange.authorizer_status = 200
        exchange.authorizer = {**output.request_context(), "integrationLatency": exchange.authorizer_latency_ms}
        exchange.usage_identifier_key = output.usage_identifier_key

    def _output(self, authorizer: Authorizer, exchange: Exchange) -> AuthorizerOutput:
        identity = []
        for source in authorizer.identity_sources:
            value = identity_value(source, exchange)
            if value is None:
                raise GatewayError("UNAUTHORIZED", UNAUTHORIZED_MESSAGE)
            identity.append(value)
        expression = authorizer.validation_expression
        if expression and re.fullmatch(expression, identity[0]) is None:
            raise GatewayError("UNAUTHORIZED", UNAUTHORIZED_MESSAGE)
        key = (authorizer.logical_id, tuple(identity))
        if authorizer.ttl_seconds > 0:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached.expires > self._clock():
                return cached.output
        output = self._invoke(authorizer, exchange, identity)
        if authorizer.ttl_seconds > 0:
            with self._lock:
                self._cache[key] = _Cached(self._clock() + authorizer.ttl_seconds, output)
        return output

    def _invoke(self, authorizer: Authorizer, exchange: Exchange, identity: list[str]) -> AuthorizerOutput:
        assert exchange.api is not None
        source_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{exchange.api.api_id}/authorizers/{authorizer.id}"
        if not exchange.api.may_invoke(authorizer.function_arn, source_arn):
            log.warning("no Lambda permission lets API Gateway invoke authorizer %s", authorizer.logical_id)
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", None)
        try:
            function = self._find(authorizer.function_arn)
        except KeyError as exc:
            log.warning("authorizer function %s is not deployed", authorizer.function_arn)
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", None) from exc
        event = (
            token_authorizer_event(exchange, identity[0])
            if authorizer.type == "TOKEN"
            else request_authorizer_event(exchange)
        )
        try:
            result = function.invoke(event)
        except Exception as exc:  # a function error is an answer: 401 or 500
            if str(exc) == UNAUTHORIZED_MESSAGE:
                raise GatewayError("UNAUTHORIZED", UNAUTHORIZED_MESSAGE) from exc
            log.warning("authorizer %s failed: %r", authorizer.logical_id, exc)
            raise GatewayError("AUTHORIZER_FAILURE", None) from exc
        try:
            return AuthorizerOutput.model_validate(result)
        except ValidationError as exc:
            log.warning("authorizer %s returned no valid policy: %s", authorizer.logical_id, exc)
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", None) from exc
