"""A tenant flooding the API next to a quiet one: the quiet tenant's submit latency, idle and next to the flood.

It runs the reliability scenario itself (tests/reliability/test_tenant_limits.py, the flooding test), alone on
the machine, so the scenario and its invariants exist once; the test writes its figures, which this reports.
Target: the quiet tenant's submit p99 next to the flood within 1.5x of its idle p99.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import RESULTS, ROOT, Report

SCENARIO = "tests/reliability/test_tenant_limits.py"
TEST = "test_a_flooding_tenant_hits_its_limits_and_another_tenants_submits_stay_fast"
TARGET_RATIO = 1.5


def run(quick: bool) -> Report:
    report = Report(
        benchmark="tenant_flood", command=f"python -m bench tenant_flood{' --quick' if quick else ''}", quick=quick
    )
    command = [sys.executable, "-m", "pytest", f"{SCENARIO}::{TEST}", "-p", "no:xdist", "-q", "-s"]
    finished = subprocess.run(command, cwd=ROOT, check=False)
    passed = finished.returncode == 0
    report.check(
        "the flooding tenant held to its limits, nothing recorded beyond them", "yes", "yes" if passed else "no", passed
    )
    if not passed:
        return report
    figures = json.loads((RESULTS / "tenant_flood_scenario.json").read_text(encoding="utf-8"))
    report.figures = figures
    ratio = figures["flooded_p99_ms"] / figures["idle_p99_ms"]
    report.check(
        "quiet tenant's submit p99 next to the flood",
        f"<= {TARGET_RATIO}x idle",
        f"{figures['flooded_p99_ms']} ms = {ratio:.2f}x idle {figures['idle_p99_ms']} ms "
        f"(p50 {figures['flooded_p50_ms']} / {figures['idle_p50_ms']} ms)",
        ratio <= TARGET_RATIO,
    )
    report.notes.append(f"flooding tenant's answers: {figures['flooding_tenant_answers']}")
    return report
