"""The reliability suite's load scenario at full size: 300 jobs over all five providers, 20 % of the
callback providers' callbacks dropped and 10 % doubled (`make test` runs it with 60).

It runs the test itself (tests/reliability/test_load.py, `--load-jobs`), so the scenario and its invariants
exist once; the test writes its throughput to bench/results/load.json, which this reports.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import RESULTS, ROOT, Report

JOBS = 300
QUICK_JOBS = 60


def run(quick: bool) -> Report:
    jobs = QUICK_JOBS if quick else JOBS
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/reliability/test_load.py",
        f"--load-jobs={jobs}",
        "-p",
        "no:xdist",
        "-q",
        "-s",
    ]
    report = Report(benchmark="load", command=f"python -m bench load{' --quick' if quick else ''}", quick=quick)
    finished = subprocess.run(command, cwd=ROOT, check=False)
    passed = finished.returncode == 0
    report.check(
        "every job succeeded, archived once, one task and one event id per change",
        "all",
        "yes" if passed else "no",
        passed,
    )
    if passed:
        figures = json.loads((RESULTS / "load.json").read_text(encoding="utf-8"))
        report.figures = figures
        report.notes.append(
            f"{figures['jobs']} jobs: submitted {figures['submitted_per_second']} jobs/s, completed "
            f"{figures['completed_per_second']} jobs/s, submit p50 {figures['submit_latency_p50_ms']} ms / p99 "
            f"{figures['submit_latency_p99_ms']} ms, completed by {figures['completed_by']}"
        )
    return report
