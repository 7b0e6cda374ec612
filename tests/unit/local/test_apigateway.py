"""The local API Gateway over HTTP, with a small hand-made template and fake functions."""

from __future__ import annotations

import base64
import json
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from local.aws.apigateway import ApiDefinitionError, ApiGatewayAdapter, load_api
from local.aws.lambdas import FunctionRegistry
from local.aws.template import ACCOUNT_ID, Resolver, Template, UnresolvableError

API = "Api"
STAGE = "v1"
ALLOW_ALL = "arn:aws:execute-api:us-east-1:*:*/v1/*/*"
ERROR_TEMPLATE = '{"error": {"code": "%s", "message": $context.error.messageString}}'


def _join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def _uri(function: str) -> dict[str, Any]:
    return _join(
        "arn:",
        {"Ref": "AWS::Partition"},
        ":apigateway:",
        {"Ref": "AWS::Region"},
        ":lambda:path/2015-03-31/functions/",
        {"Fn::GetAtt": [function, "Arn"]},
        "/invocations",
    )


def _permission(function: str, source: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function, "Arn"]},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": _join(
                "arn:aws:execute-api:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":",
                {"Ref": API},
                source,
            ),
        },
    }


def _resource(parent: str | None, part: str) -> dict[str, Any]:
    parent_id = {"Fn::GetAtt": [API, "RootResourceId"]} if parent is None else {"Ref": parent}
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"ParentId": parent_id, "PathPart": part, "RestApiId": {"Ref": API}},
    }


def _method(resource: str | None, verb: str, integration: dict[str, Any], **extra: Any) -> dict[str, Any]:
    resource_id = {"Fn::GetAtt": [API, "RootResourceId"]} if resource is None else {"Ref": resource}
    props = {"HttpMethod": verb, "ResourceId": resource_id, "RestApiId": {"Ref": API}, "Integration": integration}
    props.setdefault("AuthorizationType", "NONE")
    props.update(extra)
    return {"Type": "AWS::ApiGateway::Method", "Properties": props}


def _proxy(function: str = "AppFn", **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": _uri(function), **extra}


def _authorized(resource: str, verb: str, **extra: Any) -> dict[str, Any]:
    return _method(
        resource,
        verb,
        _proxy(),
        AuthorizationType="CUSTOM",
        AuthorizerId={"Ref": "KeyAuthorizer"},
        **extra,
    )


def _gateway_response(kind: str, template: str | None = None, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"ResponseType": kind, "RestApiId": {"Ref": API}, **extra}
    if template is not None:
        props["ResponseTemplates"] = {"application/json": template}
    return {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": props}


def api_template(ttl: int = 60) -> dict[str, Any]:
    cors = {
        "Type": "MOCK",
        "RequestTemplates": {"application/json": "{ statusCode: 200 }"},
        "IntegrationResponses": [
            {
                "StatusCode": "204",
                "ResponseParameters": {
                    "method.response.header.Access-Control-Allow-Origin": "'*'",
                    "method.response.header.Access-Control-Allow-Methods": "'GET'",
                },
            }
        ],
    }
    resources: dict[str, Any] = {
        API: {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "Test", "BinaryMediaTypes": ["image~1png"]}},
        "Deployment": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": API}}},
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": API},
                "DeploymentId": {"Ref": "Deployment"},
                "StageName": STAGE,
                "TracingEnabled": True,
                "AccessLogSetting": {
                    "DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:access",
                    "Format": json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "status": "$context.status",
                            "resource": "$context.resourcePath",
                            "tenant": "$context.authorizer.principalId",
                            "errorType": "$context.error.responseType",
                        }
                    ),
                },
            },
        },
        "KeyAuthorizer": {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "RestApiId": {"Ref": API},
                "Name": "keys",
                "Type": "REQUEST",
                "IdentitySource": "method.request.header.Authorization",
                "AuthorizerResultTtlInSeconds": ttl,
                "AuthorizerUri": _uri("AuthFn"),
            },
        },
        "Validator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {"RestApiId": {"Ref": API}, "ValidateRequestBody": True, "ValidateRequestParameters": True},
        },
        "ItemModel": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "RestApiId": {"Ref": API},
                "ContentType": "application/json",
                "Schema": {
                    "$schema": "http://json-schema.org/draft-04/schema#",
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
        },
        "Status": _resource(None, "status"),
        "StatusGet": _method("Status", "GET", _proxy()),
        "StatusOptions": _method("Status", "OPTIONS", cors),
        "Items": _resource(None, "items"),
        "ItemsGet": _authorized("Items", "GET"),
        "ItemsPost": _authorized(
            "Items",
            "POST",
            RequestValidatorId={"Ref": "Validator"},
            RequestParameters={"method.request.header.X-Request-Id": True, "method.request.querystring.dry": False},
            RequestModels={"application/json": {"Ref": "ItemModel"}},
        ),
        "Item": _resource("Items", "{item_id}"),
        "ItemGet": _authorized("Item", "GET", RequestParameters={"method.request.path.item_id": True}),
        "ItemDelete": _authorized("Item", "DELETE"),
        "Special": _resource("Items", "special"),
        "SpecialGet": _method("Special", "GET", _proxy()),
        "Files": _resource(None, "files"),
        "FilesKey": _resource("Files", "{key+}"),
        "FilesAny": _method("FilesKey", "ANY", _proxy()),
        "Slow": _resource(None, "slow"),
        "SlowGet": _method("Slow", "GET", _proxy("SlowFn", TimeoutInMillis=200)),
        "Orphan": _resource(None, "orphan"),
        "OrphanGet": _method("Orphan", "GET", _proxy("OrphanFn")),
        "AppPermission": _permission("AppFn", _join("/", {"Ref": "Stage"}, "/*/*")),
        "SlowPermission": _permission("SlowFn", "/v1/GET/slow"),
        "AuthPermission": _permission("AuthFn", _join("/authorizers/", {"Ref": "KeyAuthorizer"})),
        "Unauthorized": _gateway_response("UNAUTHORIZED", ERROR_TEMPLATE % "unauthorized"),
        "BadBody": _gateway_response(
            "BAD_REQUEST_BODY",
            '{"error": {"code": "validation_error", "message": $context.error.messageString, '
            '"details": "$context.error.validationErrorString"}}',
        ),
        "BadParameters": _gateway_response("BAD_REQUEST_PARAMETERS", ERROR_TEMPLATE % "bad_request"),
        "TooLarge": _gateway_response("REQUEST_TOO_LARGE", ERROR_TEMPLATE % "payload_too_large"),
        "NotFound": _gateway_response(
            "MISSING_AUTHENTICATION_TOKEN",
            '{"error": {"code": "not_found", "message": "no such route"}}',
            StatusCode="404",
        ),
        "Default4xx": _gateway_response(
            "DEFAULT_4XX",
            ERROR_TEMPLATE % "client_error",
            ResponseParameters={
                "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                "gatewayresponse.header.X-Echo": "method.request.header.X-Echo",
            },
        ),
    }
    for function in ("AppFn", "AuthFn", "SlowFn", "OrphanFn"):
        resources[function] = {"Type": "AWS::Lambda::Function", "Properties": {"Handler": f"{function}.handler"}}
    return {"Resources": resources}


def resolver() -> Resolver:
    def ref(name: str) -> Any:
        raise UnresolvableError(f"no value for {name}")

    def att(name: str, attribute: str) -> Any:
        if attribute == "Arn":
            return f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:test-{name}"
        raise UnresolvableError(f"{name}.{attribute}")

    return Resolver(ref, att)


class FakeFunction:
    """Stands for a deployed function: records its events and answers through `behaviour`."""

    def __init__(self, behaviour: Callable[[dict[str, Any]], Any]) -> None:
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        return self.behaviour(event)


def echo(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"ok": True})}


def allow(principal: str = "tenant-1", resource: str = ALLOW_ALL, effect: str = "Allow", **context: Any):
    def answer(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "principalId": principal,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
            },
            "context": {"tenant_id": principal, **context},
        }

    return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stack:
    def __init__(self, ttl: int = 60) -> None:
        self.app = FakeFunction(echo)
        self.auth = FakeFunction(allow())
        self.slow = FakeFunction(echo)
        self.orphan = FakeFunction(echo)
        self.registry = FunctionRegistry()
        for name, function in (("AppFn", self.app), ("AuthFn", self.auth), ("SlowFn", self.slow)):
            self.registry.hosts[f"test-{name}"] = function  # type: ignore[assignment]
        self.registry.hosts["test-OrphanFn"] = self.orphan  # type: ignore[assignment]
        self.clock = Clock()
        self.adapter = ApiGatewayAdapter(Template(api_template(ttl)), resolver(), self.registry, clock=self.clock)


@pytest.fixture
def stack() -> Iterator[Stack]:
    made = Stack()
    made.adapter.start()
    yield made
    made.adapter.stop()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.adapter.url, timeout=10) as client:
        yield client


@pytest.fixture
def root(stack: Stack) -> Iterator[httpx.Client]:
    """A client on the server root, outside the stage."""
    with httpx.Client(base_url=stack.adapter.url.rsplit("/", 1)[0], timeout=10) as client:
        yield client


KEY = {"Authorization": "Bearer key-1"}


# -- routes and proxy events -------------------------------------------------------------------------


def test_start_returns_the_stage_url(stack: Stack) -> None:
    assert stack.adapter.url.startswith("http://127.0.0.1:")
    assert stack.adapter.url.endswith("/v1")


def test_a_public_route_gets_the_rest_proxy_event(stack: Stack, http: httpx.Client) -> None:
    response = http.get("/status", headers={"User-Agent": "tests"})

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    (event,) = stack.app.events
    assert event["resource"] == "/status"
    assert event["path"] == "/status"
    assert event["httpMethod"] == "GET"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    context = event["requestContext"]
    port = stack.adapter.url.split(":")[2].split("/")[0]
    assert context["domainName"] == f"127.0.0.1:{port}"
    assert context["path"] == "/v1/status"
    assert context["resourcePath"] == "/status"
    assert context["stage"] == "v1"
    assert context["accountId"] == ACCOUNT_ID
    assert context["apiId"] == stack.adapter.api.api_id
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests"
    assert isinstance(context["requestTimeEpoch"], int)
    assert "authorizer" not in context
    assert response.headers["x-amzn-RequestId"] == context["requestId"]
    assert response.headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"


def test_path_parameters_are_decoded_and_literal_parts_win(stack: Stack, http: httpx.Client) -> None:
    assert http.get("/items/a%20b%2Fc", headers=KEY).status_code == 200
    assert http.get("/items/special").status_code == 200

    item, special = stack.app.events
    assert item["resource"] == "/items/{item_id}"
    assert item["pathParameters"] == {"item_id": "a b/c"}
    assert item["path"] == "/items/a b/c"
    assert special["resource"] == "/items/special"
    assert special["pathParameters"] is None


def test_a_greedy_parameter_takes_the_rest_of_the_path_for_any_method(stack: Stack, http: httpx.Client) -> None:
    assert http.put("/files/a/b/c.txt", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 200

    (event,) = stack.app.events
    assert event["resource"] == "/files/{key+}"
    assert event["pathParameters"] == {"key": "a/b/c.txt"}
    assert event["httpMethod"] == "PUT"
    assert event["body"] == "x"


def test_query_strings_and_repeated_headers_have_single_and_multi_value_views(stack: Stack, http: httpx.Client) -> None:
    http.get("/status?a=1&a=2&b=", headers=[("X-Tag", "one"), ("X-Tag", "two")])

    (event,) = stack.app.events
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]


def test_a_trailing_slash_reaches_the_same_resource(stack: Stack, http: httpx.Client) -> None:
    assert http.get("/status/").status_code == 200
    assert stack.app.events[0]["path"] == "/status"


@pytest.mark.parametrize(("verb", "path"), [("GET", "/nothing"), ("PUT", "/status"), ("GET", "/items/x/y")])
def test_an_unknown_route_or_method_is_the_templates_missing_token_response(
    stack: Stack, http: httpx.Client, verb: str, path: str
) -> None:
    response = http.request(verb, path)

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such route"}}
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert stack.app.events == []


@pytest.mark.parametrize("path", ["/", "/v2/status", "/status"])
def test_outside_the_stage_is_api_gateways_plain_403(stack: Stack, root: httpx.Client, path: str) -> None:
    response = root.get(path)

    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_options_is_answered_by_the_mock_integration(stack: Stack, http: httpx.Client) -> None:
    response = http.options("/status", headers={"Origin": "https://app.example.com"})

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET"
    assert response.content == b""
    assert stack.app.events == []


# -- bodies ------------------------------------------------------------------------------------------


def test_a_binary_media_type_reaches_the_function_base64_encoded(stack: Stack, http: httpx.Client) -> None:
    payload = bytes(range(256))
    http.post("/files/picture.png", content=payload, headers={"Content-Type": "image/png"})

    (event,) = stack.app.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_a_non_text_content_type_is_base64_and_json_is_text(stack: Stack, http: httpx.Client) -> None:
    http.post("/files/blob", content=b"plain ascii", headers={"Content-Type": "application/octet-stream"})
    http.post("/files/doc", content=b'{"a": "\xc3\xa9"}', headers={"Content-Type": "application/json"})

    blob, doc = stack.app.events
    assert blob["isBase64Encoded"] is True
    assert base64.b64decode(blob["body"]) == b"plain ascii"
    assert doc["isBase64Encoded"] is False
    assert doc["body"] == '{"a": "é"}'


def test_a_base64_function_answer_is_decoded_and_headers_are_merged(stack: Stack, http: httpx.Client) -> None:
    payload = b"\x89PNG\r\n\x1a\n\x00"
    stack.app.behaviour = lambda event: {
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "X-One": "a"},
        "multiValueHeaders": {"X-One": ["b"], "Set-Cookie": ["s=1", "t=2"]},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }

    response = http.get("/status")

    assert response.status_code == 201
    assert response.content == payload
    assert response.headers.get_list("X-One") == ["b", "a"]
    assert response.headers.get_list("Set-Cookie") == ["s=1", "t=2"]


def test_headers_api_gateway_owns_come_back_remapped(stack: Stack, http: httpx.Client) -> None:
    stack.app.behaviour = lambda event: {
        "statusCode": 401,
        "headers": {"WWW-Authenticate": "Bearer", "Content-Length": "999"},
        "body": "no",
    }

    response = http.get("/status")

    assert response.headers["x-amzn-Remapped-WWW-Authenticate"] == "Bearer"
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["Content-Length"] == "2"


# -- function errors ---------------------------------------------------------------------------------


def _raise(event: dict[str, Any]) -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "behaviour",
    [
        _raise,
        lambda event: "not an object",
        lambda event: {"body": "no status"},
        lambda event: {"statusCode": 200, "body": {"not": "a string"}},
        lambda event: {"statusCode": 200, "body": "", "extra": 1},
        lambda event: {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        lambda event: {"statusCode": 200, "headers": {"X": "a\r\nInjected: b"}},
        lambda event: {"statusCode": 42},
    ],
    ids=["raises", "string", "no-status", "dict-body", "extra-key", "bad-base64", "header-newline", "bad-status"],
)
def test_a_function_error_or_malformed_answer_is_502(
    stack: Stack, http: httpx.Client, behaviour: Callable[[dict[str, Any]], Any]
) -> None:
    stack.app.behaviour = behaviour

    response = http.get("/status")

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_a_function_without_an_api_gateway_permission_is_500(stack: Stack, http: httpx.Client) -> None:
    response = http.get("/orphan")

    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error"}
    assert stack.orphan.events == []


def test_a_function_slower_than_the_integration_timeout_is_504(stack: Stack, http: httpx.Client) -> None:
    release = __import__("threading").Event()

    def slow(event: dict[str, Any]) -> Any:
        release.wait(5)
        return echo(event)

    stack.slow.behaviour = slow
    try:
        response = http.get("/slow")
    finally:
        release.set()

    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}


# -- the authorizer ----------------------------------------------------------------------------------


def test_an_allowed_request_carries_the_authorizer_context(stack: Stack, http: httpx.Client) -> None:
    stack.auth.behaviour = allow("tenant-9", key_id="k1", quota=7, admin=False)

    response = http.get("/items?tenant=x", headers=KEY)

    assert response.status_code == 200
    (auth_event,) = stack.auth.events
    assert auth_event["type"] == "REQUEST"
    assert (
        auth_event["methodArn"] == f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{stack.adapter.api.api_id}/v1/GET/items"
    )
    assert auth_event["headers"]["Authorization"] == "Bearer key-1"
    assert auth_event["queryStringParameters"] == {"tenant": "x"}
    assert auth_event["resource"] == "/items"
    assert auth_event["requestContext"]["stage"] == "v1"
    (event,) = stack.app.events
    authorizer = event["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "tenant-9"
    assert authorizer["tenant_id"] == "tenant-9"
    assert authorizer["key_id"] == "k1"
    assert authorizer["quota"] == "7"
    assert authorizer["admin"] == "false"


def test_a_missing_identity_source_is_401_without_calling_the_authorizer(stack: Stack, http: httpx.Client) -> None:
    for headers in ({}, {"Authorization": ""}):
        response = http.get("/items", headers=headers)

        assert response.status_code == 401
        assert response.json() == {"error": {"code": "unauthorized", "message": "Unauthorized"}}
        assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert stack.auth.events == []
    assert stack.app.events == []


def test_an_authorizer_failing_with_unauthorized_is_401(stack: Stack, http: httpx.Client) -> None:
    def refuse(event: dict[str, Any]) -> Any:
        raise PermissionError("Unauthorized")

    stack.auth.behaviour = refuse

    response = http.get("/items", headers=KEY)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Unauthorized"
    assert stack.app.events == []


@pytest.mark.parametrize(
    "behaviour",
    [
        _raise,
        lambda event: {"policyDocument": {"Statement": []}},
        lambda event: {"principalId": "p", "policyDocument": {"Statement": [{"Effect": "Maybe"}]}},
        lambda event: {**allow()(event), "context": {"nested": {"a": 1}}},
    ],
    ids=["raises", "no-principal", "bad-statement", "nested-context"],
)
def test_an_authorizer_error_or_invalid_answer_is_500(
    stack: Stack, http: httpx.Client, behaviour: Callable[[dict[str, Any]], Any]
) -> None:
    stack.auth.behaviour = behaviour

    response = http.get("/items", headers=KEY)

    assert response.status_code == 500
    assert response.json() == {"message": None}
    assert response.headers["x-amzn-ErrorType"] == "AuthorizerConfigurationException"
    assert stack.app.events == []


def test_an_explicit_deny_is_403_through_the_default_4xx_response(stack: Stack, http: httpx.Client) -> None:
    stack.auth.behaviour = allow(effect="Deny")

    response = http.get("/items", headers={**KEY, "X-Echo": "hello"})

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "client_error",
            "message": "User is not authorized to access this resource with an explicit deny",
        }
    }
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Echo"] == "hello"
    assert stack.app.events == []


def test_a_policy_that_does_not_cover_the_method_is_403(stack: Stack, http: httpx.Client) -> None:
    api_id = stack.adapter.api.api_id
    stack.auth.behaviour = allow(resource=f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{api_id}/v1/GET/items/?1")

    assert http.get("/items/a1", headers=KEY).status_code == 200
    denied = http.get("/items/ab1", headers={"Authorization": "other"})

    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "User is not authorized to access this resource"


def test_a_cached_policy_is_reused_per_identity_and_judged_per_method(stack: Stack, http: httpx.Client) -> None:
    api_id = stack.adapter.api.api_id
    stack.auth.behaviour = allow(resource=f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{api_id}/v1/GET/*")

    assert http.get("/items", headers=KEY).status_code == 200
    assert http.get("/items/1", headers=KEY).status_code == 200
    assert http.delete("/items/1", headers=KEY).status_code == 403
    assert len(stack.auth.events) == 1

    assert http.get("/items", headers={"Authorization": "Bearer key-2"}).status_code == 200
    assert len(stack.auth.events) == 2

    stack.adapter.clear_authorizer_cache()
    assert http.get("/items", headers=KEY).status_code == 200
    assert len(stack.auth.events) == 3


def test_a_cached_result_expires_after_its_ttl(stack: Stack, http: httpx.Client) -> None:
    http.get("/items", headers=KEY)
    stack.clock.now += 59
    http.get("/items", headers=KEY)
    assert len(stack.auth.events) == 1

    stack.clock.now += 2
    http.get("/items", headers=KEY)
    assert len(stack.auth.events) == 2


def test_a_ttl_of_zero_calls_the_authorizer_every_time() -> None:
    made = Stack(ttl=0)
    with made.adapter, httpx.Client(base_url=made.adapter.url) as client:
        for _ in range(3):
            assert client.get("/items", headers=KEY).status_code == 200
    assert len(made.auth.events) == 3


def test_a_token_authorizer_gets_the_header_and_its_validation_expression_gates_the_call() -> None:
    made = Stack()
    body = api_template()
    body["Resources"]["KeyAuthorizer"]["Properties"].update(Type="TOKEN", IdentityValidationExpression="^Bearer .+$")
    made.adapter = ApiGatewayAdapter(Template(body), resolver(), made.registry, clock=made.clock)
    with made.adapter, httpx.Client(base_url=made.adapter.url) as client:
        assert client.get("/items", headers={"Authorization": "Basic abc"}).status_code == 401
        assert made.auth.events == []
        assert client.get("/items/7", headers=KEY).status_code == 200

    (event,) = made.auth.events
    api_id = made.adapter.api.api_id
    assert event == {
        "type": "TOKEN",
        "authorizationToken": "Bearer key-1",
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{api_id}/v1/GET/items/7",
    }


# -- request validation ------------------------------------------------------------------------------


def test_a_missing_required_parameter_is_400(stack: Stack, http: httpx.Client) -> None:
    response = http.post("/items", json={"name": "x"}, headers=KEY)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "bad_request", "message": "Missing required request parameters: [X-Request-Id]"}
    }
    assert stack.app.events == []


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"name": 5}', "name: 5 is not of type 'string'"),
        (b"[1]", "body: [1] is not of type 'object'"),
        (b"{", ""),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)
def test_a_body_that_fails_the_model_is_400(stack: Stack, http: httpx.Client, content: bytes, detail: str) -> None:
    headers = {**KEY, "X-Request-Id": "r1", "Content-Type": "application/json"}

    response = http.post("/items", content=content, headers=headers)

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert body["message"] == "Invalid request body"
    assert detail in body["details"]
    assert stack.app.events == []


def test_an_integer_past_pythons_digit_limit_still_reaches_the_function(stack: Stack, http: httpx.Client) -> None:
    """API Gateway's validator has no digit limit: the function gets the body and answers for itself."""
    headers = {**KEY, "X-Request-Id": "r1", "Content-Type": "application/json"}
    content = b'{"name": "x", "n": ' + b"1" * 5_000 + b"}"

    assert http.post("/items", content=content, headers=headers).status_code == 200
    assert stack.app.events[-1]["body"] == content.decode()


def test_a_valid_request_passes_and_a_body_without_a_model_is_not_checked(stack: Stack, http: httpx.Client) -> None:
    headers = {**KEY, "X-Request-Id": "r1"}
    assert http.post("/items", json={"name": "x"}, headers=headers).status_code == 200
    assert http.post("/items", content=b"[1]", headers={**headers, "Content-Type": "text/plain"}).status_code == 200
    assert len(stack.app.events) == 2


def test_the_authorizer_runs_before_validation(stack: Stack, http: httpx.Client) -> None:
    response = http.post("/items", json={"name": 5})

    assert response.status_code == 401


def test_a_body_over_10_mb_is_413(stack: Stack, http: httpx.Client) -> None:
    response = http.post("/files/big", content=b"x" * (10 * 1024 * 1024 + 1))

    assert response.status_code == 413
    assert response.json() == {"error": {"code": "payload_too_large", "message": "Request Too Long"}}
    assert stack.app.events == []


def test_a_chunked_body_over_10_mb_is_413_and_a_small_one_arrives(stack: Stack, http: httpx.Client) -> None:
    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"y" * (1024 * 1024)

    assert http.post("/files/big", content=chunks(11)).status_code == 413
    assert http.post("/files/small", content=chunks(2), headers={"Content-Type": "text/plain"}).status_code == 200
    assert len(stack.app.events[0]["body"]) == 2 * 1024 * 1024


# -- logging and loading -----------------------------------------------------------------------------


def test_each_request_writes_one_access_log_line_in_the_stage_format(
    stack: Stack, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="local.aws.apigateway.access"):
        ok = http.get("/items", headers=KEY)
        http.get("/items")

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "local.aws.apigateway.access"]
    assert lines[0] == {
        "requestId": ok.headers["x-amzn-RequestId"],
        "status": "200",
        "resource": "/items",
        "tenant": "tenant-1",
        "errorType": "-",
    }
    assert lines[1]["status"] == "401"
    assert lines[1]["errorType"] == "UNAUTHORIZED"
    assert len(lines) == 2


def _load(mutate: Callable[[dict[str, Any]], None]) -> None:
    body = api_template()
    mutate(body["Resources"])
    load_api(Template(body), resolver())


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda r: r["StatusGet"]["Properties"].update(AuthorizationType="AWS_IAM"), "AWS_IAM"),
        (lambda r: r["StatusGet"]["Properties"].update(Integration={"Type": "HTTP_PROXY"}), "HTTP_PROXY"),
        (
            lambda r: r.update(
                Plan={
                    "Type": "AWS::ApiGateway::UsagePlan",
                    "Properties": {
                        "ApiStages": [
                            {"ApiId": {"Ref": API}, "Stage": {"Ref": "Stage"}, "Throttle": {"/status/GET": {}}}
                        ]
                    },
                }
            ),
            "per-method throttles",
        ),
        (
            lambda r: r.update(Stage2={**r["Stage"], "Properties": {**r["Stage"]["Properties"], "StageName": "v2"}}),
            "2 stages",
        ),
        (lambda r: r["ItemModel"]["Properties"].update(Schema={"type": 5}), "draft 4"),
        (lambda r: r["KeyAuthorizer"]["Properties"].update(IdentitySource="context.foo"), "context.foo"),
        (lambda r: r["Item"]["Properties"].update(ParentId={"Ref": "Nowhere"}), "Nowhere"),
    ],
    ids=["iam", "http-proxy", "plan-method-throttle", "two-stages", "bad-schema", "identity-source", "bad-parent"],
)
def test_what_is_not_emulated_fails_loading_with_the_resource_named(
    mutate: Callable[[dict[str, Any]], None], named: str
) -> None:
    with pytest.raises(ApiDefinitionError, match=named):
        _load(mutate)


def test_header_values_are_resolved_and_a_deployed_origin_is_swapped_for_its_local_alias() -> None:
    body = api_template()
    origin = _join("'https://", {"Ref": "Dist"}, ".cloudfront.net'")
    body["Resources"]["Default4xx"]["Properties"]["ResponseParameters"] = {
        "gatewayresponse.header.Access-Control-Allow-Origin": origin
    }
    preflight = body["Resources"]["StatusOptions"]["Properties"]["Integration"]["IntegrationResponses"][0]
    preflight["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"] = origin

    def ref(name: str) -> Any:
        if name == "Dist":
            return "d123"
        raise UnresolvableError(name)

    def att(name: str, attribute: str) -> Any:
        return resolver()({"Fn::GetAtt": [name, attribute]})

    api = load_api(Template(body), Resolver(ref, att), aliases={"https://d123.cloudfront.net": "http://127.0.0.1:8000"})

    assert api.gateway_responses["DEFAULT_4XX"].parameters["Access-Control-Allow-Origin"] == "'http://127.0.0.1:8000'"
    (status,) = [child for child in api.root.children if child.path_part == "status"]
    (mock,) = status.methods["OPTIONS"].integration.responses
    assert mock.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"


def test_a_client_that_leaves_before_the_answer_is_noted_not_a_server_fault(
    stack: Stack, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    invoked, release, answered = threading.Event(), threading.Event(), threading.Event()

    def slow(event: dict[str, Any]) -> Any:
        invoked.set()
        release.wait(5)
        answered.set()
        return {"statusCode": 200, "body": "x" * 200_000}  # more than a socket buffer: the write must fail

    stack.slow.behaviour = slow
    url = urlsplit(stack.adapter.url)
    caplog.set_level(logging.INFO, logger="local.aws.apigateway.server")
    with socket.create_connection((url.hostname, url.port)) as client:
        client.sendall(f"GET {url.path}/slow HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        assert invoked.wait(5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # leave with a reset
    release.set()
    assert answered.wait(5)

    def noted() -> bool:
        return any("client left before the answer" in record.getMessage() for record in caplog.records)

    for _ in range(100):
        if noted():
            break
        threading.Event().wait(0.05)
    assert noted()
    assert "Exception occurred during processing" not in capfd.readouterr().err
