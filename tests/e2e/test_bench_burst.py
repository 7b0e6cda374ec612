"""The burst benchmark's code path at a small size: both runs post, wait, read the emulator's counters and
report every target (`python -m bench burst` runs it at 300 and 500 jobs)."""

from __future__ import annotations

import pytest

from bench import burst

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_small_burst_reports_every_figure() -> None:
    lines: list[str] = []

    report = burst.run(quick=True, kie_jobs=10, auto_jobs=10, threads=4, job_seconds=1.0, say=lines.append)

    runs = report.figures["runs"]
    assert set(runs) == {"kie", "auto"}
    kie, auto = runs["kie"], runs["auto"]
    # under one window of Kie's limit: every job is taken at once and succeeds
    assert (kie["non_202"], kie["succeeded"], kie["ended"]) == (0, 10, {"succeeded": 10})
    assert kie["per_provider"]["kie"]["submits_accepted"] == 10
    assert kie["limits"] == {"kie": {"submits_per_window": 20, "window_seconds": 10.0, "max_concurrent": 100}}
    assert kie["minimum_makespan_s"] == 5.0
    assert kie["makespan_s"] is not None
    assert kie["makespan_s"] >= 1.0
    assert auto["succeeded"] == 10
    assert set(auto["per_provider"]) == {"vidgo", "kie", "aimlapi", "pixwith", "apimart"}
    assert sum(p["submits_accepted"] for p in auto["per_provider"].values()) == 10
    assert auto["allowed_rate_per_s"] == 6.0
    assert [t.name for t in report.targets][:2] == ["kie (10 jobs): POST p99", "kie (10 jobs): answers other than 202"]
    assert len(report.targets) == 10
    assert report.command == "python -m bench burst --quick --burst-jobs 10 --burst-auto-jobs 10 --burst-threads 4"
