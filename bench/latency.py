"""Lifecycle latency: from the provider finishing a task to the SNS event that says so, per completion path.

Completion time is the emulator task's `finished_at` (the moment the provider's task ended). The event time
is SQS's `SentTimestamp` on our subscription's copy of the `job.archiving` event (or the terminal event for a
failed job): moto stamps it when SNS hands the publish to the queue, so it is the publish time, taken by the
AWS emulator itself. The event's own `created_at` is the time the status change was stored (the job's
`updated_at`), before the stream, the notify function and SNS, so it is reported as a breakdown, not as the
figure: completion -> stored, and stored -> published.

Callback path: Vidgo and Kie jobs (the provider's callback moves the job). Poll path: the three poll-only
providers, and Vidgo and Kie jobs whose callback is dropped (`callback_drop`), left to the poller.
"""

from __future__ import annotations

from typing import Any

from bench.common import Report, percentile, table
from bench.load import JobOutcome, LoadRig, Phase, Planned
from local.system import LocalOptions

JOB_SECONDS = 3.0
WAVE_SIZE = 10  # jobs in flight at once: the whole stack shares one interpreter on this machine
CALLBACK_P99_TARGET = 1.0
DROP_MARK = "[drop-callback]"


def callback_plan(count: int) -> list[Planned]:
    providers = ["vidgo", "kie"]
    return [Planned(providers[i % 2], "callback", f"a lighthouse in a storm #{i}") for i in range(count)]


def poll_plan(count: int) -> list[Planned]:
    """Three quarters on poll-only providers, a quarter on callback providers whose callback never comes."""
    kinds = [("aimlapi", "poll-only"), ("pixwith", "poll-only"), ("apimart", "poll-only")] * 2 + [
        ("vidgo", "callback dropped"),
        ("kie", "callback dropped"),
    ]
    plans = []
    for i in range(count):
        provider, kind = kinds[i % len(kinds)]
        mark = f" {DROP_MARK}" if kind == "callback dropped" else ""
        plans.append(Planned(provider, kind, f"waves on a black sand beach #{i}{mark}"))
    return plans


def run_load(quick: bool, say: Any = print) -> tuple[list[Phase], dict[str, Any]]:
    per_path = 40 if quick else 200
    options = LocalOptions(job_seconds=JOB_SECONDS)
    rig = LoadRig(options)
    with rig.running():
        rig.emulator.add_fault("callback_drop", match_prompt=DROP_MARK)
        say(f"  load run: {per_path} jobs per path in waves of {WAVE_SIZE}, {JOB_SECONDS:.0f} s provider jobs")
        phases = [
            rig.run_phase("callback", callback_plan(per_path), WAVE_SIZE, say),
            rig.run_phase("poll", poll_plan(per_path), WAVE_SIZE, say),
        ]
    setup = {
        "jobs_per_path": per_path,
        "wave_size": WAVE_SIZE,
        "provider_job_seconds": JOB_SECONDS,
        "poll_min_wait_seconds": options.poll_min_wait_seconds,
        "poll_max_wait_seconds": options.poll_max_wait_seconds,
        "callback_first_wait_seconds": options.callback_first_wait_seconds,
    }
    return phases, setup


def _event_latency(job: JobOutcome) -> tuple[float, float, float] | None:
    """(completion -> published, completion -> stored, stored -> published), seconds."""
    if job.finished_at is None:
        return None
    event = job.first_event("job.archiving", "job.failed", "job.timed_out")
    if event is None:
        return None
    return event.sent_at - job.finished_at, event.created_at - job.finished_at, event.sent_at - event.created_at


def _distribution(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def summarize(phase: Phase) -> dict[str, Any]:
    groups: dict[str, list[JobOutcome]] = {"all": phase.jobs}
    for job in phase.jobs:
        groups.setdefault(f"{job.planned.provider} ({job.planned.kind})", []).append(job)
    out: dict[str, Any] = {"jobs": len(phase.jobs), "seconds": round(phase.seconds, 1), "groups": {}}
    for name, jobs in groups.items():
        measured = [m for m in (_event_latency(j) for j in jobs) if m is not None]
        archiving = [j.first_event("job.archiving") for j in jobs]
        if not measured:
            continue
        out["groups"][name] = {
            "published": _distribution([m[0] for m in measured]),
            "stored": _distribution([m[1] for m in measured]),
            "stored_to_published": _distribution([m[2] for m in measured]),
            "completed_by": sorted({str(e.completed_by) for e in archiving if e is not None}),
            "statuses": sorted({j.status for j in jobs}),
        }
    out["problems"] = phase.problems
    return out


def report_for(phases: list[Phase], setup: dict[str, Any], quick: bool) -> Report:
    report = Report("latency", f"python -m bench latency{' --quick' if quick else ''}", quick)
    summaries = {phase.name: summarize(phase) for phase in phases}
    rows = []
    for path, summary in summaries.items():
        for group, stats in summary["groups"].items():
            pub, stored, gap = stats["published"], stats["stored"], stats["stored_to_published"]
            rows.append(
                [path, group, pub["count"], f"{pub['p50']:.3f}", f"{pub['p90']:.3f}", f"{pub['p99']:.3f}",
                 f"{pub['max']:.3f}", f"{stored['p50']:.3f}", f"{stored['p99']:.3f}", f"{gap['p50']:.3f}",
                 f"{gap['p99']:.3f}"]
            )  # fmt: skip
    print("latency: provider completion -> SNS event (s); 'stored' = completion -> status change stored")
    header = ["path", "jobs", "n", "p50", "p90", "p99", "max", "stored p50", "stored p99", "stored->SNS p50",
              "stored->SNS p99"]  # fmt: skip
    print(table(header, rows))
    callback = summaries["callback"]["groups"]["all"]["published"]
    report.check(
        "callback path p99, completion -> SNS event",
        f"< {CALLBACK_P99_TARGET:.1f} s",
        f"{callback['p99']:.3f} s (p50 {callback['p50']:.3f} s, n={callback['count']})",
        callback["p99"] < CALLBACK_P99_TARGET,
    )
    for phase in phases:
        for problem in phase.problems:
            report.notes.append(f"{phase.name}: {problem}")
    report.figures = {"setup": setup, "paths": summaries}
    if quick:
        report.notes.append(f"--quick: {setup['jobs_per_path']} jobs per path instead of 200.")
    return report


def run(quick: bool) -> tuple[Report, list[Phase], dict[str, Any]]:
    phases, setup = run_load(quick)
    return report_for(phases, setup, quick), phases, setup
