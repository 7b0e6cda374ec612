"""Tenant limits under concurrency and abuse, over the whole local stack.

- 50 submits at once from one tenant: the active-job cap and the monthly budget are never exceeded, not even by
  one job (the counters are taken in the transaction that stores the job), and every refused submit recorded
  nothing.
- A tenant flooding the API hits its limits (its usage plan's throttle at the gateway, its active-job cap at
  admission) while another tenant's submit latency stays near its idle figure. The flood stays under the stage's
  own per-method throttle, which every tenant shares (on AWS too): a flood above that is for the WAF's per-address
  rate rule.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.system import LocalOptions
from shared.repository.keys import TenantLimits
from shared.repository.tenant_usage import TenantUsageRepository, month_of
from tests.reliability.harness import DEFAULT_OPTIONS, Rig, tagged
from tests.support.api_client import ApiError, RelayClient
from tests.support.flood import Flood


@pytest.fixture(scope="module")
def rig_options() -> LocalOptions:
    """The api in sandbox processes of its own, as Lambda serves concurrent requests: one process taking requests
    in turn would make the quiet tenant queue behind the flood, a cost of running locally, not of the design."""
    return dataclasses.replace(DEFAULT_OPTIONS, sandboxes={"api": 4})


pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONCURRENT = 50
# Long enough that no job ends (and frees its slot) while the 50 submits are in flight.
LONG_JOB_SECONDS = 40.0
SAMPLES = 60
ROUNDS = 3
FLOODERS = 5
FLOOD_PAUSE_SECONDS = 0.125  # each flooder at most 8 requests/s: 40/s in all, under the stage's 50/s
FLOOD_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "tenant_flood_scenario.json"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def submit_at_once(system: Rig, tenant: str, limits: TenantLimits) -> tuple[list[dict[str, Any]], list[ApiError]]:
    key = system.tenant(tenant, limits)
    start = threading.Barrier(CONCURRENT)

    def one(index: int) -> dict[str, Any] | ApiError:
        client = RelayClient(system.base_url, key.api_key)
        try:
            start.wait()
            return client.submit({"provider": "kie", "prompt": tagged(f"burst {index}")})
        except ApiError as error:
            return error
        finally:
            client.http.close()

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(one, range(CONCURRENT)))
    return [a for a in answers if isinstance(a, dict)], [a for a in answers if isinstance(a, ApiError)]


def counters(system: Rig, tenant: str) -> tuple[int, float]:
    usage = TenantUsageRepository(system.stack.table_name, system.stack.aws.client("dynamodb"))
    return usage.active(tenant), usage.month(tenant, month_of(datetime.now(UTC))).credits_committed


def test_fifty_concurrent_submits_never_exceed_the_active_job_cap(system: Rig) -> None:
    system.emulator.set_job_seconds(LONG_JOB_SECONDS)

    accepted, refused = submit_at_once(system, "burst-active", TenantLimits(tier="pro", max_active_jobs=7))

    assert len(accepted) == 7, f"{len(accepted)} accepted: {[e.code for e in refused]}"
    assert {(e.status, e.code) for e in refused} == {(429, "too_many_active_jobs")}
    assert system.tenant_job_ids("burst-active") == {job["id"] for job in accepted}  # refused ones left nothing
    assert counters(system, "burst-active")[0] == 7


def test_fifty_concurrent_submits_never_exceed_the_monthly_budget(system: Rig) -> None:
    system.emulator.set_job_seconds(LONG_JOB_SECONDS)
    estimate = float(system.api.submit({"provider": "kie", "prompt": tagged("price")})["cost"]["amount"])
    budget = estimate * 5.5

    accepted, refused = submit_at_once(system, "burst-budget", TenantLimits(tier="pro", monthly_credits=budget))

    assert len(accepted) == 5, f"{len(accepted)} accepted: {[e.code for e in refused]}"
    assert {(e.status, e.code) for e in refused} == {(429, "budget_exceeded")}
    assert system.tenant_job_ids("burst-budget") == {job["id"] for job in accepted}
    active, committed = counters(system, "burst-budget")
    assert active == 5
    assert committed == pytest.approx(estimate * 5)
    assert committed <= budget


def timed_submits(client: RelayClient, count: int, label: str) -> list[float]:
    took = []
    for index in range(count):
        started = time.perf_counter()
        client.submit({"provider": "vidgo", "prompt": tagged(f"{label} {index}")})
        took.append(time.perf_counter() - started)
    return took


def test_a_flooding_tenant_hits_its_limits_and_another_tenants_submits_stay_fast(system: Rig) -> None:
    # Nothing finishes while measuring, so no archive work lands in one phase and not the other.
    system.emulator.set_job_seconds(LONG_JOB_SECONDS)
    quiet = system.client(system.tenant("quiet-tenant"))
    flooder_key = system.tenant("flooding-tenant", TenantLimits(tier="free", max_active_jobs=1))
    timed_submits(quiet, 3, "warm")
    outcomes: Counter[str] = Counter()

    # Idle and flooded phases alternate, so the machine's drift (other work, the jobs piling up) hits both alike.
    idle: list[float] = []
    flooded: list[float] = []
    for round_index in range(ROUNDS):
        idle += timed_submits(quiet, SAMPLES // ROUNDS, f"idle {round_index}")
        body = {"provider": "vidgo", "prompt": tagged("flood")}
        with Flood(system.base_url, flooder_key.api_key, body, threads=FLOODERS, pause=FLOOD_PAUSE_SECONDS) as flood:
            time.sleep(0.3)
            flooded += timed_submits(quiet, SAMPLES // ROUNDS, f"flooded {round_index}")
        outcomes.update(flood.outcomes)

    idle_p99, flooded_p99 = percentile(idle, 0.99), percentile(flooded, 0.99)
    print(  # noqa: T201 (the figures this scenario records)
        f"\nquiet tenant submit p99: idle {idle_p99 * 1000:.0f} ms, next to the flood {flooded_p99 * 1000:.0f} ms "
        f"({flooded_p99 / idle_p99:.2f}x); p50 {percentile(idle, 0.5) * 1000:.0f} / "
        f"{percentile(flooded, 0.5) * 1000:.0f} ms; flooding tenant's answers: {dict(outcomes)}"
    )
    FLOOD_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    FLOOD_RESULTS.write_text(
        json.dumps(
            {
                "samples_per_phase": len(idle),
                "idle_p50_ms": round(percentile(idle, 0.5) * 1000, 1),
                "idle_p99_ms": round(idle_p99 * 1000, 1),
                "flooded_p50_ms": round(percentile(flooded, 0.5) * 1000, 1),
                "flooded_p99_ms": round(flooded_p99 * 1000, 1),
                "flood": {"clients": FLOODERS, "requests_per_second": round(FLOODERS / FLOOD_PAUSE_SECONDS)},
                "flooding_tenant_answers": dict(outcomes),
            },
            indent=2,
        )
    )
    assert outcomes.get("throttled", 0) > 0  # its usage plan, at the gateway
    assert outcomes.get("too_many_active_jobs", 0) > 0  # its active-job cap, at admission
    # One slot: a second job only once the first ended, and every accepted submit (and only those) stored.
    assert len(system.tenant_job_ids("flooding-tenant")) == outcomes.get("accepted", 0) >= 1
    assert counters(system, "flooding-tenant")[0] <= 1
    # The goal, a p99 within 1.5x of idle, is measured by `python -m bench tenant_flood` (this scenario, alone on
    # the machine). Here it may share the cores with other tests, so what is asserted is looser: the median, within 3x.
    assert percentile(flooded, 0.5) <= 3 * percentile(idle, 0.5) + 0.2
