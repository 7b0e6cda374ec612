"""Stage and method throttling in the local API Gateway: a token bucket per method, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.aws.apigateway import ApiDefinitionError, ApiGatewayAdapter, load_api
from local.aws.apigateway.throttling import Throttle, TokenBucket
from local.aws.template import Template
from tests.unit.local.test_apigateway import ERROR_TEMPLATE, KEY, Clock, FakeFunction, Stack, api_template, resolver

STAGE_WIDE = {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 2, "ThrottlingBurstLimit": 3}
STATUS_OWN = {"HttpMethod": "GET", "ResourcePath": "/~1status", "ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 1}


def throttled_template(*settings: dict[str, Any]) -> dict[str, Any]:
    template = api_template()
    template["Resources"]["Stage"]["Properties"]["MethodSettings"] = list(settings)
    template["Resources"]["Throttled"] = {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {
            "ResponseType": "THROTTLED",
            "RestApiId": {"Ref": "Api"},
            "ResponseTemplates": {"application/json": ERROR_TEMPLATE % "throttled"},
        },
    }
    return template


class ThrottledStack(Stack):
    def __init__(self, *settings: dict[str, Any]) -> None:
        super().__init__()
        self.adapter = ApiGatewayAdapter(
            Template(throttled_template(*settings)), resolver(), self.registry, clock=self.clock
        )


@pytest.fixture
def stack() -> Iterator[ThrottledStack]:
    made = ThrottledStack(STAGE_WIDE, STATUS_OWN)
    made.adapter.start()
    yield made
    made.adapter.stop()


@pytest.fixture
def http(stack: ThrottledStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.adapter.url, timeout=10) as client:
        yield client


def statuses(http: httpx.Client, path: str, count: int, **kwargs: Any) -> list[int]:
    return [http.get(path, **kwargs).status_code for _ in range(count)]


def test_a_method_over_its_own_limit_gets_429_in_the_templates_shape_and_no_function_call(
    stack: ThrottledStack, http: httpx.Client
) -> None:
    assert statuses(http, "/status", 3) == [200, 429, 429]

    response = http.get("/status")
    assert response.status_code == 429
    assert response.json() == {"error": {"code": "throttled", "message": "Too Many Requests"}}
    assert len(stack.app.events) == 1
    assert stack.adapter.throttled() == {("GET", "/status"): 3}


def test_each_method_has_its_own_bucket_at_the_stage_rate(stack: ThrottledStack, http: httpx.Client) -> None:
    assert statuses(http, "/status", 2) == [200, 429]
    # Other methods are untouched by /status running dry, each with a burst of 3.
    assert statuses(http, "/items", 4, headers=KEY) == [200, 200, 200, 429]
    assert statuses(http, "/items/special", 4) == [200, 200, 200, 429]
    assert stack.adapter.throttled() == {("GET", "/status"): 1, ("GET", "/items"): 1, ("GET", "/items/special"): 1}


def test_throttling_comes_before_the_authorizer(stack: ThrottledStack, http: httpx.Client) -> None:
    assert statuses(http, "/items", 3, headers=KEY) == [200, 200, 200]
    calls = len(stack.auth.events)

    assert http.get("/items", headers={"Authorization": "Bearer another"}).status_code == 429
    assert len(stack.auth.events) == calls


def test_tokens_come_back_at_the_rate(stack: ThrottledStack, http: httpx.Client) -> None:
    assert statuses(http, "/items/special", 4) == [200, 200, 200, 429]
    stack.clock.now += 0.5  # 2 per second: one token
    assert statuses(http, "/items/special", 2) == [200, 429]
    stack.clock.now += 60  # never more than the burst
    assert statuses(http, "/items/special", 4) == [200, 200, 200, 429]


def test_the_definition_reads_the_stage_default_and_each_methods_own() -> None:
    api = load_api(Template(throttled_template(STAGE_WIDE, STATUS_OWN)), resolver())

    assert api.default_throttle == Throttle(rate=2, burst=3)
    assert api.method_throttles == {("GET", "/status"): Throttle(rate=1, burst=1)}


def test_a_method_setting_only_its_rate_takes_the_burst_from_the_stage() -> None:
    own_rate = {"HttpMethod": "POST", "ResourcePath": "/~1items", "ThrottlingRateLimit": 7}
    api = load_api(Template(throttled_template(STAGE_WIDE, own_rate)), resolver())

    assert api.method_throttles == {("POST", "/items"): Throttle(rate=7, burst=3)}


def test_without_method_settings_nothing_is_throttled() -> None:
    api = load_api(Template(api_template()), resolver())
    assert (api.default_throttle, api.method_throttles) == (None, {})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"HttpMethod": "GET", "ResourcePath": "/*", "ThrottlingRateLimit": 1}, "GET /\\* are not emulated"),
        ({"HttpMethod": "*", "ResourcePath": "/~1items/*", "ThrottlingRateLimit": 1}, "'/items/\\*' are not emulated"),
        ({"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": "fast"}, "not a number"),
    ],
)
def test_settings_it_cannot_honour_fail_loading(setting: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiDefinitionError, match=message):
        load_api(Template(throttled_template(setting)), resolver())


def test_the_token_bucket() -> None:
    bucket = TokenBucket(Throttle(rate=10, burst=2), now=0.0)

    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]


def test_a_fake_function_is_what_the_stack_calls() -> None:
    assert isinstance(ThrottledStack(STAGE_WIDE).app, FakeFunction)
    assert isinstance(Clock()(), float)
