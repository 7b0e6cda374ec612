"""Tenant tiers as API Gateway usage plans keyed by the authorizer: every app route counts, tiers from context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import InvalidContextError
from infra.names import STACK_NAME
from shared.models.tiers import DEFAULT_TIERS
from tests.infra.synth import Synth, render, synthesize
from tests.infra.test_api import methods


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def plans(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        p["Properties"]["UsagePlanName"]: p["Properties"] for p in synth.of_type("AWS::ApiGateway::UsagePlan").values()
    }


def test_the_api_takes_its_usage_plan_keys_from_the_authorizer(synth: Synth) -> None:
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"


def test_every_authorized_route_requires_a_usage_plan_key_and_no_public_one_does(synth: Synth) -> None:
    for (verb, path), method in methods(synth).items():
        if verb == "OPTIONS":
            continue
        assert method.get("ApiKeyRequired", False) is (method["AuthorizationType"] == "CUSTOM"), (verb, path)


def test_one_usage_plan_per_default_tier_on_the_stage_with_its_throttle_and_monthly_quota(synth: Synth) -> None:
    (api_id,) = synth.of_type("AWS::ApiGateway::RestApi")
    (stage_id,) = synth.of_type("AWS::ApiGateway::Stage")
    found = plans(synth)

    assert set(found) == {f"{STACK_NAME}-tier-{name}" for name in DEFAULT_TIERS}
    for name, tier in DEFAULT_TIERS.items():
        props = found[f"{STACK_NAME}-tier-{name}"]
        assert props["Throttle"] == {"RateLimit": tier.rate_limit, "BurstLimit": tier.burst_limit}
        assert props["Quota"] == {"Limit": tier.monthly_requests, "Period": "MONTH"}
        [stage] = props["ApiStages"]
        assert stage["ApiId"] == {"Ref": api_id}
        assert stage["Stage"] == {"Ref": stage_id}


def test_tiers_come_from_context_and_a_tier_without_a_quota_has_none() -> None:
    tiers = {
        "basic": {"rate_limit": 1, "burst_limit": 2, "monthly_requests": 500},
        "unmetered": {"rate_limit": 100, "burst_limit": 200},
    }
    synth = synthesize({"relay:tenant_tiers": json.dumps(tiers), "relay:default_tier": "basic"})
    found = plans(synth)

    assert set(found) == {f"{STACK_NAME}-tier-basic", f"{STACK_NAME}-tier-unmetered"}
    assert found[f"{STACK_NAME}-tier-basic"]["Quota"] == {"Limit": 500, "Period": "MONTH"}
    assert found[f"{STACK_NAME}-tier-basic"]["Throttle"] == {"RateLimit": 1, "BurstLimit": 2}
    assert "Quota" not in found[f"{STACK_NAME}-tier-unmetered"]
    env = synth.resources[synth.function_id("api")]["Properties"]["Environment"]["Variables"]
    assert json.loads(env["KR_TENANT_TIERS"]) == {
        "basic": {"rate_limit": 1.0, "burst_limit": 2, "monthly_requests": 500},
        "unmetered": {"rate_limit": 100.0, "burst_limit": 200, "monthly_requests": None},
    }
    assert env["KR_DEFAULT_TIER"] == "basic"


@pytest.mark.parametrize(
    "context",
    [
        {"relay:default_tier": "gold"},
        {"relay:tenant_tiers": json.dumps({"Bad Name": {"rate_limit": 1, "burst_limit": 1}})},
        {"relay:tenant_tiers": json.dumps({"standard": {"rate_limit": 0, "burst_limit": 1}})},
        {"relay:tenant_tiers": "{}"},
    ],
)
def test_a_bad_tier_configuration_stops_the_synth(context: dict[str, str]) -> None:
    with pytest.raises(InvalidContextError):
        synthesize(context)


def test_the_api_function_reads_its_tenants_usage_from_these_plans_only(synth: Synth) -> None:
    plan_ids = set(synth.of_type("AWS::ApiGateway::UsagePlan"))
    readable = {
        resource for resource, actions in synth.function_permissions("api").items() if "apigateway:GET" in actions
    }
    assert len(readable) == len(plan_ids)
    for resource in readable:
        assert resource.endswith("/usage")
        assert any(f"<{plan_id}>" in resource for plan_id in plan_ids), resource
    assert render({"Ref": "x"}) == "<x>"
