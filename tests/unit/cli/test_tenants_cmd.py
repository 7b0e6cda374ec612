"""`kling-relay keys create` with a tier and caps, and `tenants show|set`, against moto's API Gateway and table:
each tenant gets its own usage plan key in its tier's plan, which the authorizer names."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from cli.main import main
from functions.authorizer import handler as authorizer
from shared.runtime import Runtime
from tests.fixtures.cloud import Cloud
from tests.support.events import FakeContext, fixture
from tests.unit.cli.conftest import Run
from tests.unit.cli.test_keys_cmd import DEPLOYMENT, table_items


def authorize(api_key: str) -> dict[str, Any]:
    event = fixture("authorizer_request.json")
    event["headers"]["Authorization"] = f"Bearer {api_key}"
    policy: dict[str, Any] = authorizer.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    return policy


def plan_of(api_key_value: str) -> str:
    """The usage plan holding the API Gateway key with this value (what API Gateway does with it)."""
    apigateway = boto3.client("apigateway")
    [key] = [k for k in apigateway.get_api_keys(includeValues=True)["items"] if k["value"] == api_key_value]
    [plan] = apigateway.get_usage_plans(keyId=key["id"])["items"]
    return str(plan["id"])


def show(run: Run, tenant: str) -> dict[str, Any]:
    code, out, err = run("tenants", "show", tenant, "--json", *DEPLOYMENT)
    assert (code, err) == (0, "")
    shown: dict[str, Any] = json.loads(out)
    return shown


def test_keys_create_sets_tier_and_caps_and_the_authorizer_names_the_tiers_plan(
    rt: Runtime, run: Run, tier_plans: dict[str, str]
) -> None:
    code, out, err = run(
        "keys",
        "create",
        "--tenant",
        "acme",
        "--tier",
        "pro",
        "--max-active",
        "3",
        "--monthly-credits",
        "250.5",
        "--json",
        *DEPLOYMENT,
    )
    assert (code, err) == (0, "")
    created = json.loads(out)
    assert (created["tier"], created["max_active_jobs"], created["monthly_credits"]) == ("pro", 3, 250.5)

    policy = authorize(created["api_key"])

    assert plan_of(policy["usageIdentifierKey"]) == tier_plans["pro"]
    shown = show(run, "acme")
    assert shown["tier"] == "pro"
    assert (shown["max_active_jobs"], shown["monthly_credits"], shown["active_jobs"]) == (3, 250.5, 0)
    assert shown["usage_plan_id"] == tier_plans["pro"]


def test_every_key_of_a_tenant_shares_its_one_usage_plan_key(rt: Runtime, run: Run) -> None:
    first = json.loads(run("keys", "create", "--tenant", "acme", "--json", *DEPLOYMENT)[1])
    second = json.loads(run("keys", "create", "--tenant", "acme", "--json", *DEPLOYMENT)[1])

    assert authorize(first["api_key"])["usageIdentifierKey"] == authorize(second["api_key"])["usageIdentifierKey"]
    assert len(boto3.client("apigateway").get_api_keys()["items"]) == 1


def test_an_unknown_tier_is_refused_and_nothing_is_created(rt: Runtime, cloud: Cloud, run: Run) -> None:
    code, out, err = run("keys", "create", "--tenant", "acme", "--tier", "gold", *DEPLOYMENT)

    assert (code, out) == (2, "")
    assert "no tier 'gold'" in err
    assert "free, pro, standard" in err
    assert table_items(cloud) == []
    assert boto3.client("apigateway").get_api_keys()["items"] == []


@pytest.mark.parametrize(
    "flags",
    [["--max-active", "-1"], ["--max-active", "two"], ["--monthly-credits", "nan"], ["--tier", "Gold"]],
)
def test_bad_caps_are_refused_by_the_parser(rt: Runtime, cloud: Cloud, flags: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["keys", "create", "--tenant", "acme", *flags, *DEPLOYMENT])
    assert stopped.value.code == 2
    assert table_items(cloud) == []


def test_tenants_set_changes_caps_and_moves_the_key_to_the_new_tiers_plan(
    rt: Runtime, run: Run, tier_plans: dict[str, str]
) -> None:
    created = json.loads(run("keys", "create", "--tenant", "acme", "--max-active", "2", "--json", *DEPLOYMENT)[1])
    usage_key = authorize(created["api_key"])["usageIdentifierKey"]
    assert plan_of(usage_key) == tier_plans["standard"]

    code, out, err = run(
        "tenants",
        "set",
        "acme",
        "--tier",
        "free",
        "--max-active",
        "unlimited",
        "--monthly-credits",
        "40",
        "--json",
        *DEPLOYMENT,
    )

    assert (code, err) == (0, "")
    changed = json.loads(out)
    assert (changed["tier"], changed["max_active_jobs"], changed["monthly_credits"]) == ("free", None, 40)
    assert authorize(created["api_key"])["usageIdentifierKey"] == usage_key  # same key, other plan
    assert plan_of(usage_key) == tier_plans["free"]


def test_tenants_show_and_set_refuse_an_unknown_tenant(rt: Runtime, run: Run) -> None:
    for argv in (["tenants", "show", "ghost"], ["tenants", "set", "ghost", "--max-active", "1"]):
        code, out, err = run(*argv, *DEPLOYMENT)
        assert (code, out) == (2, "")
        assert "no tenant ghost" in err


def test_tenants_show_prints_unlimited_caps_in_words(rt: Runtime, run: Run) -> None:
    run("keys", "create", "--tenant", "acme", *DEPLOYMENT)
    code, out, _ = run("tenants", "show", "acme", *DEPLOYMENT)
    assert code == 0
    assert "max_active_jobs:     unlimited" in out
    assert "tier:                standard" in out
