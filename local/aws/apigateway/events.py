"""Lambda events API Gateway sends (REST proxy v1.0, REQUEST and TOKEN authorizers), and the proxy result."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from local.aws.apigateway.exchange import Exchange
from local.aws.apigateway.policy import wildcard
from local.aws.template import ACCOUNT_ID
from shared.digits import ascii_int

TEXT_TYPES = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/xml",
    "application/*+xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/graphql",
)
_IDENTITY_KEYS = (
    "cognitoIdentityPoolId",
    "accountId",
    "cognitoIdentityId",
    "caller",
    "principalOrgId",
    "accessKey",
    "cognitoAuthenticationType",
    "cognitoAuthenticationProvider",
    "userArn",
    "user",
)


class MalformedProxyResponseError(Exception):
    """The function's answer is not a Lambda proxy response (API Gateway: 502)."""


def event_headers(exchange: Exchange) -> list[tuple[str, str]]:
    """The request headers plus those API Gateway adds (forwarding and trace headers)."""
    request = exchange.request
    forwarded = ", ".join([*request.header_values("X-Forwarded-For"), request.source_ip])
    added = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}
    headers = [(name, value) for name, value in request.headers if name.lower() not in added]
    port = request.domain_name.rsplit(":", 1)[-1] if ":" in request.domain_name else "80"
    return [
        *headers,
        ("X-Amzn-Trace-Id", exchange.trace),
        ("X-Forwarded-For", forwarded),
        ("X-Forwarded-Port", port),
        ("X-Forwarded-Proto", "http"),
    ]


def _single_and_multi(pairs: list[tuple[str, str]], fold_case: bool) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two views: the last value per name, and every value per name."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower(), name) if fold_case else name
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def _request_context(exchange: Exchange) -> dict[str, Any]:
    request = exchange.request
    identity: dict[str, Any] = dict.fromkeys(_IDENTITY_KEYS)
    identity["sourceIp"] = request.source_ip
    identity["userAgent"] = request.header("User-Agent")
    values = exchange.variables()
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": values["apiId"],
        "resourceId": exchange.resource_id,
        "stage": exchange.stage,
        "domainName": request.domain_name,
        "domainPrefix": values["domainPrefix"],
        "requestId": exchange.request_id,
        "extendedRequestId": exchange.extended_request_id,
        "protocol": request.protocol,
        "identity": identity,
        "resourcePath": exchange.resource_path,
        "path": values["path"],
        "httpMethod": request.method,
        "requestTime": values["requestTime"],
        "requestTimeEpoch": exchange.epoch_ms,
    }
    if exchange.authorizer is not None:
        context["authorizer"] = dict(exchange.authorizer)
    return context


def _request_parts(exchange: Exchange) -> dict[str, Any]:
    request = exchange.request
    headers, multi_headers = _single_and_multi(event_headers(exchange), fold_case=True)
    query, multi_query = _single_and_multi(list(request.query), fold_case=False)
    stage_variables = exchange.api.stage_variables if exchange.api else {}
    return {
        "resource": exchange.resource_path,
        "path": exchange.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(exchange.path_parameters) or None,
        "stageVariables": dict(stage_variables) or None,
        "requestContext": _request_context(exchange),
    }


def is_binary(content_type: str | None, binary_media_types: tuple[str, ...], body: bytes) -> bool:
    """Whether the body reaches the function base64-encoded: a binary media type of the API, a non-text
    content type, or bytes that are not UTF-8 text."""
    if content_type and any(wildcard(pattern, content_type) for pattern in binary_media_types):
        return True
    if content_type and not any(wildcard(pattern, content_type) for pattern in TEXT_TYPES):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def proxy_event(exchange: Exchange) -> dict[str, Any]:
    """The REST API (payload version 1.0) Lambda proxy event."""
    request = exchange.request
    event = _request_parts(exchange)
    binary_types = exchange.api.binary_media_types if exchange.api else ()
    if not request.body:
        event["body"], event["isBase64Encoded"] = None, False
    elif is_binary(request.content_type, binary_types, request.body):
        event["body"], event["isBase64Encoded"] = base64.b64encode(request.body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = request.body.decode("utf-8"), False
    return event


def request_authorizer_event(exchange: Exchange) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": exchange.method_arn(), **_request_parts(exchange)}


def token_authorizer_event(exchange: Exchange, token: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": exchange.method_arn()}


# -- the function's answer ---------------------------------------------------------------------------

HeaderValue = StrictStr | StrictInt | float | StrictBool


class ProxyResult(BaseModel):
    """What an AWS_PROXY function must return; any other key makes API Gateway reject the answer."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status_code: StrictInt | StrictStr = Field(alias="statusCode")
    headers: dict[str, HeaderValue] | None = None
    multi_value_headers: dict[str, list[HeaderValue]] | None = Field(default=None, alias="multiValueHeaders")
    body: StrictStr | None = None
    is_base64_encoded: StrictBool = Field(default=False, alias="isBase64Encoded")


def _text(value: HeaderValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_proxy_result(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (multiValueHeaders merged with headers, as API Gateway does) and body bytes."""
    try:
        # The function's return value crosses Lambda as JSON.
        parsed = ProxyResult.model_validate(json.loads(json.dumps(result)))
    except (TypeError, ValueError, ValidationError) as exc:
        raise MalformedProxyResponseError(f"malformed Lambda proxy response: {exc}") from exc
    status = ascii_int(str(parsed.status_code)) or 0
    if not 100 <= status <= 599:
        raise MalformedProxyResponseError(f"malformed Lambda proxy response: statusCode {parsed.status_code!r}")
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, many in (parsed.multi_value_headers or {}).items():
        merged.setdefault(name.lower(), (name, []))[1].extend(_text(v) for v in many)
    for name, one in (parsed.headers or {}).items():
        values = merged.setdefault(name.lower(), (name, []))[1]
        if _text(one) not in values:
            values.append(_text(one))
    headers = [(name, value) for name, values in merged.values() for value in values]
    if any("\r" in text or "\n" in text for header in headers for text in header):
        raise MalformedProxyResponseError("malformed Lambda proxy response: a header contains a line break")
    body = parsed.body or ""
    if parsed.is_base64_encoded:
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise MalformedProxyResponseError(f"malformed Lambda proxy response: body is not base64: {exc}") from exc
    return status, headers, body.encode("utf-8")
