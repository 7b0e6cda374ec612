"""Tenant limits through the local stack: the usage plan's throttle, active-job and budget caps released by the
stream consumer, `GET /usage` (its request count from the usage plan), and the operator and app CLI commands."""

from __future__ import annotations

import contextlib
import io
import json
import time

import httpx
import pytest

from cli.main import main as cli_main
from shared.repository.keys import TenantLimits
from tests.e2e.conftest import E2E
from tests.support.api_client import ApiError


def test_a_free_tier_tenant_is_throttled_by_its_usage_plan_and_another_tenant_is_not(system: E2E) -> None:
    free = system.client(system.stack.create_api_key("e2e-free", TenantLimits(tier="free")))
    codes: list[int] = []
    with httpx.Client(base_url=system.stack.base_url, headers=free.headers, timeout=10) as http:
        for _ in range(12):  # the free tier: 2 requests/s, a burst of 5
            codes.append(http.get("/usage").status_code)
        throttled = http.get("/usage")

    assert codes[:5] == [200] * 5
    assert 429 in codes
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert system.api.list()["items"] is not None  # the pro tenant's own bucket is untouched
    assert system.stack.api is not None
    assert system.stack.api.refused_by_usage_plans().get("THROTTLED", 0) >= 1


def test_the_active_job_cap_refuses_with_429_and_frees_a_slot_when_a_job_ends(system: E2E) -> None:
    capped = system.client(system.stack.create_api_key("e2e-capped", TenantLimits(tier="pro", max_active_jobs=2)))
    first = capped.submit({"provider": "vidgo", "prompt": "one"})
    capped.submit({"provider": "vidgo", "prompt": "two"})

    with pytest.raises(ApiError) as refused:
        capped.submit({"provider": "vidgo", "prompt": "three"})
    assert (refused.value.status, refused.value.code) == (429, "too_many_active_jobs")
    assert refused.value.details == {"limit": "max_active_jobs", "max_active_jobs": 2, "active_jobs": 2}
    assert len(capped.list()["items"]) == 2  # nothing recorded for the refused one

    capped.wait(first["id"], timeout=60)
    deadline = time.monotonic() + 30
    while capped.usage()["active_jobs"] == 2 and time.monotonic() < deadline:
        time.sleep(0.3)  # the stream consumer settles the finished job
    assert capped.submit({"provider": "vidgo", "prompt": "three, later"})["status"] in ("submitting", "queued")


def test_the_monthly_budget_refuses_with_429_and_usage_reports_credits_by_provider(system: E2E) -> None:
    probe = system.api.submit({"provider": "kie", "prompt": "what does one cost"})
    estimate = float(probe["cost"]["amount"])
    budgeted = system.client(
        system.stack.create_api_key("e2e-budget", TenantLimits(tier="pro", monthly_credits=estimate * 1.5))
    )
    job = budgeted.submit({"provider": "kie", "prompt": "within budget"})

    with pytest.raises(ApiError) as refused:
        budgeted.submit({"provider": "kie", "prompt": "over budget"})
    assert (refused.value.status, refused.value.code) == (429, "budget_exceeded")
    assert refused.value.details["limit"] == "monthly_credits"

    done = budgeted.wait(job["id"], timeout=60)
    assert done["status"] == "succeeded"
    deadline = time.monotonic() + 30
    while not budgeted.usage()["credits"]["by_provider"] and time.monotonic() < deadline:
        time.sleep(0.3)
    report = budgeted.usage()
    assert report["active_jobs"] == 0
    assert report["limits"]["monthly_credits"] == pytest.approx(estimate * 1.5)
    assert report["credits"]["by_provider"] == {"kie": pytest.approx(done["cost"]["amount"])}
    assert report["requests"]["used"] >= 3


def test_operator_and_app_cli_commands_against_the_local_stack(system: E2E, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["keys", "create", "--tenant", "e2e-ops", "--tier", "free", "--max-active", "1", "--json"]) == 0
    created = json.loads(out.getvalue())
    assert (created["tier"], created["max_active_jobs"]) == ("free", 1)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["tenants", "set", "e2e-ops", "--tier", "standard", "--monthly-credits", "500", "--json"]) == 0
    changed = json.loads(out.getvalue())
    assert (changed["tier"], changed["max_active_jobs"], changed["monthly_credits"]) == ("standard", 1, 500)

    monkeypatch.setenv("KLING_RELAY_URL", system.stack.base_url)
    monkeypatch.setenv("KLING_RELAY_API_KEY", created["api_key"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["usage", "--json"]) == 0
    report = json.loads(out.getvalue())
    assert report["tenant_id"] == "e2e-ops"
    assert report["limits"]["tier"] == "standard"
    assert report["limits"]["rate_limit"] == 10
    assert report["limits"]["max_active_jobs"] == 1
