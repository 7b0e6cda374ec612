"""Usage plans in the local API Gateway: the authorizer names the key, each key gets its plan's throttle and
quota, a request without a key in a plan is refused, and the counts answer GetUsage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest

from local.aws.apigateway import ApiGatewayAdapter
from local.aws.template import Template
from tests.unit.local.test_apigateway import API, ERROR_TEMPLATE, KEY, Stack, allow, api_template, resolver

PLAN = "kling-relay-test-tier-small"


def plan_template() -> dict[str, Any]:
    template = api_template()
    resources = template["Resources"]
    resources[API]["Properties"]["ApiKeySourceType"] = "AUTHORIZER"
    resources["ItemsGet"]["Properties"]["ApiKeyRequired"] = True
    resources["SmallPlan"] = {
        "Type": "AWS::ApiGateway::UsagePlan",
        "Properties": {
            "UsagePlanName": PLAN,
            "Throttle": {"RateLimit": 1, "BurstLimit": 2},
            "Quota": {"Limit": 4, "Period": "MONTH"},
            "ApiStages": [{"ApiId": {"Ref": API}, "Stage": {"Ref": "Stage"}}],
        },
    }
    for kind, code in (
        ("QUOTA_EXCEEDED", "rate_limited"),
        ("THROTTLED", "throttled"),
        ("INVALID_API_KEY", "forbidden"),
    ):
        resources[f"Response{kind}"] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "ResponseType": kind,
                "RestApiId": {"Ref": API},
                "ResponseTemplates": {"application/json": ERROR_TEMPLATE % code},
            },
        }
    return template


class PlanStack(Stack):
    def __init__(self) -> None:
        super().__init__()
        self.apigateway = boto3.client("apigateway")
        self.adapter = ApiGatewayAdapter(
            Template(plan_template()), resolver(), self.registry, clock=self.clock, apigateway=lambda: self.apigateway
        )

    def key_in_plan(self, value: str, *, enabled: bool = True) -> str:
        key_id: str = self.apigateway.create_api_key(name=value, value=value, enabled=enabled)["id"]
        [plan] = [p for p in self.apigateway.get_usage_plans()["items"] if p["name"] == PLAN]
        self.apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key_id, keyType="API_KEY")
        return key_id

    def authorizer_names(self, usage_key: str | None) -> None:
        def answer(event: dict[str, Any]) -> dict[str, Any]:
            policy = allow()(event)
            return {**policy, "usageIdentifierKey": usage_key} if usage_key else policy

        self.auth.behaviour = answer


@pytest.fixture
def stack(aws_mock: None) -> Iterator[PlanStack]:
    made = PlanStack()
    made.adapter.start()
    yield made
    made.adapter.stop()


@pytest.fixture
def http(stack: PlanStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.adapter.url, timeout=10) as client:
        yield client


def test_the_templates_plans_are_created_under_their_names(stack: PlanStack) -> None:
    assert [p["name"] for p in stack.apigateway.get_usage_plans()["items"]] == [PLAN]


def test_without_a_usage_key_from_the_authorizer_the_request_is_refused_403(
    stack: PlanStack, http: httpx.Client
) -> None:
    stack.authorizer_names(None)

    response = http.get("/items", headers=KEY)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert stack.app.events == []
    assert stack.adapter.refused_by_usage_plans() == {"INVALID_API_KEY": 1}


@pytest.mark.parametrize("enabled", [True, False], ids=["unknown", "disabled"])
def test_an_unknown_or_disabled_key_is_refused_403(stack: PlanStack, http: httpx.Client, enabled: bool) -> None:
    if not enabled:
        stack.key_in_plan("disabled-key-value-0123456789", enabled=False)
    stack.authorizer_names("disabled-key-value-0123456789" if not enabled else "no-such-key-value-0123456789")

    assert http.get("/items", headers=KEY).status_code == 403
    assert stack.app.events == []


def test_a_key_gets_its_plans_burst_then_429_throttled_and_tokens_come_back_at_the_rate(
    stack: PlanStack, http: httpx.Client
) -> None:
    stack.key_in_plan("tenant-1-usage-key-0123456789")
    stack.authorizer_names("tenant-1-usage-key-0123456789")

    assert [http.get("/items", headers=KEY).status_code for _ in range(3)] == [200, 200, 429]
    assert http.get("/items", headers=KEY).json() == {"error": {"code": "throttled", "message": "Too Many Requests"}}
    stack.clock.now += 1.0
    assert http.get("/items", headers=KEY).status_code == 200
    # Routes without a key requirement are not counted or throttled by the plan.
    assert [http.get("/status").status_code for _ in range(3)] == [200, 200, 200]


def test_a_key_past_its_monthly_quota_gets_429_rate_limited_and_its_use_is_reported(
    stack: PlanStack, http: httpx.Client
) -> None:
    key_id = stack.key_in_plan("tenant-1-usage-key-0123456789")
    stack.authorizer_names("tenant-1-usage-key-0123456789")
    answers = []
    for _ in range(5):
        stack.clock.now += 5.0  # never throttled
        answers.append(http.get("/items", headers=KEY))

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[-1].json() == {"error": {"code": "rate_limited", "message": "Limit Exceeded"}}
    assert len(stack.app.events) == 4
    [plan] = stack.apigateway.get_usage_plans()["items"]
    today = datetime.now(UTC).date()
    assert stack.adapter.gateway.usage_plans.usage(plan["id"], key_id, today, today) == {key_id: [[4, 0]]}
    assert stack.adapter.refused_by_usage_plans() == {"QUOTA_EXCEEDED": 1}
