"""REST API: routes and who guards them, validation, stage logging and throttling, CORS, error shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def paths(synth: Synth) -> dict[str, str]:
    """Resource logical id -> full path ("/jobs/{job_id}")."""
    resources = synth.of_type("AWS::ApiGateway::Resource")
    (api_id,) = synth.of_type("AWS::ApiGateway::RestApi")

    def path_of(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent and parent["Fn::GetAtt"][0] == api_id else path_of(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path_of(logical_id) for logical_id in resources}


def methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    by_id = paths(synth)

    def path(resource_id: dict[str, Any]) -> str:
        return by_id[resource_id["Ref"]] if "Ref" in resource_id else "/"  # else the root's GetAtt

    return {
        (m["Properties"]["HttpMethod"], path(m["Properties"]["ResourceId"])): m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
    }


def target(method: dict[str, Any]) -> str:
    uri = method["Integration"]["Uri"]["Fn::Join"][1]
    (function,) = [part["Fn::GetAtt"][0] for part in uri if isinstance(part, dict) and "Fn::GetAtt" in part]
    return str(function)


def test_routes_functions_and_authorization(synth: Synth) -> None:
    (authorizer_id,) = synth.of_type("AWS::ApiGateway::Authorizer")
    api, callback = synth.function_id("api"), synth.function_id("callback")
    found = methods(synth)

    routes = {
        key: (target(m), m["AuthorizationType"], m.get("AuthorizerId"))
        for key, m in found.items()
        if key[0] != "OPTIONS"
    }

    guarded = ("CUSTOM", {"Ref": authorizer_id})
    assert routes == {
        ("POST", "/jobs"): (api, *guarded),
        ("GET", "/jobs"): (api, *guarded),
        ("GET", "/jobs/{job_id}"): (api, *guarded),
        ("POST", "/jobs/{job_id}/cancel"): (api, *guarded),
        ("GET", "/usage"): (api, *guarded),
        ("GET", "/providers"): (api, "NONE", None),
        ("GET", "/openapi.json"): (api, "NONE", None),
        ("POST", "/callbacks/{provider}/{job_id}"): (callback, "NONE", None),
    }
    for method in found.values():
        if method["HttpMethod"] != "OPTIONS":
            assert method["Integration"]["Type"] == "AWS_PROXY"


def test_authorizer_is_a_cached_request_authorizer_on_the_authorization_header(synth: Synth) -> None:
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]

    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == 60
    assert synth.function_id("authorizer") in json.dumps(props["AuthorizerUri"])


def test_requests_are_validated(synth: Synth) -> None:
    (validator_id, validator) = next(iter(synth.of_type("AWS::ApiGateway::RequestValidator").items()))
    found = methods(synth)

    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    for (verb, path), method in found.items():
        if verb == "OPTIONS" or path in ("/providers", "/openapi.json"):
            continue
        assert method["RequestValidatorId"] == {"Ref": validator_id}, path
        if method["AuthorizationType"] == "CUSTOM":
            assert method["RequestParameters"]["method.request.header.Authorization"] is True
        for name in ("job_id", "provider"):
            if "{" + name + "}" in path:
                assert method["RequestParameters"][f"method.request.path.{name}"] is True
    model_id = found[("POST", "/jobs")]["RequestModels"]["application/json"]["Ref"]
    assert json.loads(json.dumps(synth.resources[model_id]["Properties"]["Schema"]))["type"] == "object"


def test_stage_v1_logs_traces_and_throttles(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]

    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    settings, _callbacks = props["MethodSettings"]  # the callback route's own throttle: tests/infra/test_edge.py
    assert settings["ResourcePath"] == "/*"
    assert settings["HttpMethod"] == "*"
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (50, 100)
    access = props["AccessLogSetting"]
    log_group_id = synth.logical_id(synth.stack.api.node.find_child("AccessLogs"))
    assert {"Ref": log_group_id} in access["DestinationArn"]["Fn::Join"][1]
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["tenant"] == "$context.authorizer.principalId"
    assert "$context.identity.apiKey" not in access["Format"]


def test_execution_logs_have_retention(synth: Synth) -> None:
    (api_id,) = synth.of_type("AWS::ApiGateway::RestApi")
    groups = [
        g["Properties"] for g in synth.of_type("AWS::Logs::LogGroup").values() if "LogGroupName" in g["Properties"]
    ]

    assert groups == [
        {
            "LogGroupName": {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api_id}, "/v1"]]},
            "RetentionInDays": 30,
        }
    ]


def test_without_a_console_cors_only_on_the_public_read_routes() -> None:
    preflights = {
        path: m for (verb, path), m in methods(synthesize({"relay:console": False})).items() if verb == "OPTIONS"
    }

    assert set(preflights) == {"/providers", "/openapi.json"}
    for method in preflights.values():
        (response,) = method["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == "'*'"
        assert headers["method.response.header.Access-Control-Allow-Methods"] == "'GET'"


def test_gateway_errors_use_the_api_error_shape(synth: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }

    assert {"UNAUTHORIZED", "ACCESS_DENIED", "BAD_REQUEST_BODY", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
        responses
    )
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for response_type, props in responses.items():
        template = props["ResponseTemplates"]["application/json"]
        # API Gateway substitutes $context.error.messageString with a quoted string; stand one in to parse.
        body = json.loads(template.replace("$context.error.messageString", '"message"'))
        assert set(body) == {"error"}, response_type
        assert set(body["error"]) == {"code", "message"}, response_type
    assert (
        json.loads(
            responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"].replace(
                "$context.error.messageString", '""'
            )
        )["error"]["code"]
        == "unauthorized"
    )


def test_logging_role_for_api_gateway_is_retained(synth: Synth) -> None:
    (account,) = synth.of_type("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synth.resources[role_id]

    # One per account and region, shared by every REST API there: deleting this stack must not remove it.
    assert account["DeletionPolicy"] == "Retain"
    assert role["DeletionPolicy"] == "Retain"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
