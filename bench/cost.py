"""Cost per job: every billable operation counted while jobs run through the local stack, priced at public
us-east-1 prices (`bench.prices`), next to a poller that waits a fixed 15 s between polls.

Two runs. The load run (the latency benchmark's jobs, local-mode waits of 1-3 s) gives counts per job per
completion path under load. The production-wait run sends a handful of jobs through a stack with the
deployed waits (first poll after 15 s, doubling with jitter to 120 s; 90 s for callback providers): 150 s
jobs on the three poll-only providers, and 80 s jobs on the callback providers, each path a phase of its own
so the functions' work is attributed to it. The status-call targets are read from these runs.

The baseline is computed per job from the same run: the job's measured provider time d (submit to the
provider's end) polled every 15 s, as the AI/ML API's documentation suggests, with no callbacks: ceil(d / 15)
status calls, one more round after the job enters `archiving` to see it finish, 3 state transitions a round
(Wait, Poll, IsDone) plus Finished, and each poll round costing what this run's poll invocations cost on
average (duration, reads). The callback function and its API request are gone in the baseline; every other
item (submit, stored changes, archive, events) is the same as measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench import prices
from bench.common import Report, table
from bench.load import LoadRig, Phase, Planned
from bench.meter import Tally
from local.system import LocalOptions

CALLBACK_STATUS_TARGET = 1
POLL_ONLY_STATUS_TARGET = 4
POLL_ONLY = ("aimlapi", "pixwith", "apimart")
CALLBACK = ("vidgo", "kie")


@dataclass(frozen=True)
class Waits:
    poll_only_job: float
    callback_job: float
    poll_min: int
    poll_max: int
    callback_first: int
    per_provider: int
    baseline_interval: float  # the fixed poll interval of the baseline


PRODUCTION = Waits(
    poll_only_job=150,
    callback_job=80,
    poll_min=15,
    poll_max=120,
    callback_first=90,
    per_provider=2,
    baseline_interval=15,
)
# --quick: every time divided by 15 (150 s -> 10 s, 15/120 s -> 1/8 s, 90 s -> 6 s, the 15 s baseline -> 1 s),
# one job per provider.
QUICK = Waits(
    poll_only_job=10, callback_job=5, poll_min=1, poll_max=8, callback_first=6, per_provider=1, baseline_interval=1
)


@dataclass
class Items:
    """Billable quantities for some jobs (totals, divide by jobs for per-job figures)."""

    api_requests: float = 0
    lambda_requests: float = 0
    gb_seconds: float = 0
    transitions: float = 0
    wru: float = 0
    rru: float = 0
    s3_tier1: float = 0
    s3_tier2: float = 0
    sns_publishes: float = 0
    sqs_requests: float = 0
    secrets_calls: float = 0
    status_calls: float = 0

    def dollars(self) -> dict[str, float]:
        return {
            "api_gateway": self.api_requests * prices.API_GATEWAY_REST_REQUEST,
            "lambda_requests": self.lambda_requests * prices.LAMBDA_REQUEST,
            "lambda_compute": self.gb_seconds * prices.LAMBDA_GB_SECOND_ARM,
            "step_functions": self.transitions * prices.SFN_TRANSITION,
            "dynamodb_writes": self.wru * prices.DYNAMODB_WRU,
            "dynamodb_reads": self.rru * prices.DYNAMODB_RRU,
            "s3_requests": self.s3_tier1 * prices.S3_TIER1_REQUEST + self.s3_tier2 * prices.S3_TIER2_REQUEST,
            "sns": self.sns_publishes * prices.SNS_PUBLISH,
            "sqs": self.sqs_requests * prices.SQS_REQUEST,
            "secrets_manager": self.secrets_calls * prices.SECRETS_MANAGER_CALL,
        }

    def total(self) -> float:
        return sum(self.dollars().values())

    def per_job(self, jobs: int) -> Items:
        return Items(**{name: value / jobs for name, value in vars(self).items()})


def measured_items(phase: Phase, tally: Tally, exclude: frozenset[str] = frozenset()) -> Items:
    keep = {f for f in tally.invocations if f not in exclude}
    s3 = tally.service_calls("s3", keep)
    return Items(
        api_requests=sum(tally.invocations[f] for f in ("api", "callback") if f in keep),
        lambda_requests=sum(tally.invocations[f] for f in keep),
        gb_seconds=sum(tally.gb_seconds[f] for f in keep),
        transitions=sum(job.transitions for job in phase.jobs),
        wru=sum(tally.wru.values()),  # stored changes are the same whoever writes them
        rru=sum(tally.rru[f] for f in keep),
        s3_tier1=sum(n for op, n in s3.items() if op in prices.S3_TIER1),
        s3_tier2=sum(n for op, n in s3.items() if op not in prices.S3_TIER1 and op not in prices.S3_FREE),
        sns_publishes=sum(tally.service_calls("sns", keep).values()),
        sqs_requests=sum(tally.service_calls("sqs", keep).values()),
        secrets_calls=sum(tally.service_calls("secretsmanager", keep).values()),
        status_calls=sum(job.status_queries for job in phase.jobs),
    )


def baseline_items(phase: Phase, interval: float) -> tuple[Items, list[int]]:
    """The same jobs with a fixed 15 s poll and no callbacks (see the module docstring)."""
    tally = phase.tally
    items = measured_items(phase, tally, exclude=frozenset({"poll", "callback"}))
    polls = tally.invocations["poll"]
    per_poll_gbs = tally.gb_seconds["poll"] / polls if polls else 0.0
    per_poll_rru = tally.rru["poll"] / polls if polls else 0.0
    status_calls = []
    rounds = 0
    for job in phase.jobs:
        if job.finished_at is None or job.job_created is None:
            continue
        calls = max(1, math.ceil((job.finished_at - job.job_created) / interval))
        status_calls.append(calls)
        rounds += calls + 1
    items.lambda_requests += rounds
    items.gb_seconds += rounds * per_poll_gbs
    items.rru += rounds * per_poll_rru
    items.transitions = 3 * rounds + len(status_calls)
    items.status_calls = sum(status_calls)
    items.secrets_calls += sum(tally.service_calls("secretsmanager", {"poll"}).values())
    return items, status_calls


def phase_costs(phase: Phase, baseline_interval: float | None) -> dict[str, Any]:
    jobs = [j for j in phase.jobs if j.job_id]
    count = len(jobs)
    measured = measured_items(phase, phase.tally).per_job(count)
    statuses = [j.status_queries for j in jobs]
    out: dict[str, Any] = {
        "jobs": count,
        "statuses": sorted({j.status for j in jobs}),
        "completed_by": sorted({str(e.completed_by) for j in jobs for e in j.events if e.type == "job.archiving"}),
        "provider_seconds": _spread([j.finished_at - j.job_created for j in jobs if j.finished_at and j.job_created]),
        "measured_per_job": {k: round(v, 4) for k, v in vars(measured).items()},
        "measured_dollars_per_job": round(measured.total(), 7),
        "measured_breakdown": {k: round(v, 8) for k, v in measured.dollars().items()},
        "status_calls_per_job": {"mean": round(sum(statuses) / count, 2), "max": max(statuses), "min": min(statuses)},
        "status_calls_by_provider": {
            p: sorted(j.status_queries for j in jobs if j.planned.provider == p)
            for p in sorted({j.planned.provider for j in jobs})
        },
        "invocations_per_job": {f: round(n / count, 2) for f, n in sorted(phase.tally.invocations.items())},
        "problems": phase.problems,
    }
    if baseline_interval is not None:
        base, calls = baseline_items(phase, baseline_interval)
        base = base.per_job(count)
        out["baseline_per_job"] = {k: round(v, 4) for k, v in vars(base).items()}
        out["baseline_dollars_per_job"] = round(base.total(), 7)
        out["baseline_breakdown"] = {k: round(v, 8) for k, v in base.dollars().items()}
        out["baseline_status_calls"] = calls
        out["ratio_to_baseline"] = round(measured.total() / base.total(), 3)
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 1), "max": round(max(values), 1)} if values else {}


def production_run(quick: bool, say: Any = print) -> tuple[list[Phase], dict[str, Any]]:
    waits = QUICK if quick else PRODUCTION
    options = LocalOptions(
        job_seconds=waits.poll_only_job,
        poll_min_wait_seconds=waits.poll_min,
        poll_max_wait_seconds=waits.poll_max,
        callback_first_wait_seconds=waits.callback_first,
    )
    rig = LoadRig(options)
    with rig.running():
        for provider in POLL_ONLY:
            rig.emulator.set_job_seconds(waits.poll_only_job, provider=provider)
        for provider in CALLBACK:
            rig.emulator.set_job_seconds(waits.callback_job, provider=provider)
        say(f"  production-wait run: {waits}")
        callback = [
            Planned(p, "callback", f"a fox running through snow #{i}")
            for p in CALLBACK
            for i in range(waits.per_provider)
        ]
        poll = [
            Planned(p, "poll-only", f"rain on a tin roof #{i}") for p in POLL_ONLY for i in range(waits.per_provider)
        ]
        phases = [
            rig.run_phase("callback (production waits)", callback, len(callback), say),
            rig.run_phase("poll-only (production waits)", poll, len(poll), say),
        ]
    return phases, {"waits": vars(waits)}


def _row(name: str, costs: dict[str, Any]) -> list[Any]:
    m = costs["measured_per_job"]
    row = [name, costs["jobs"], f"{costs['status_calls_per_job']['mean']:.2f}", costs["status_calls_per_job"]["max"],
           f"{m['lambda_requests']:.1f}", f"{m['gb_seconds']:.3f}", f"{m['transitions']:.1f}", f"{m['wru']:.1f}",
           f"{m['rru']:.1f}", f"{m['s3_tier1']:.1f}/{m['s3_tier2']:.1f}", f"{m['sns_publishes']:.1f}",
           f"{m['secrets_calls']:.2f}", f"${costs['measured_dollars_per_job']:.6f}"]  # fmt: skip
    if "baseline_dollars_per_job" in costs:
        b = costs["baseline_per_job"]
        row += [
            f"{b['status_calls']:.2f}",
            f"${costs['baseline_dollars_per_job']:.6f}",
            f"{costs['ratio_to_baseline']:.2f}x",
        ]
    else:
        row += ["-", "-", "-"]
    return row


def run(quick: bool, load: tuple[list[Phase], dict[str, Any]] | None = None) -> Report:
    report = Report("cost", f"python -m bench cost{' --quick' if quick else ''}", quick)
    if load is None:
        from bench.latency import run_load

        load = run_load(quick)
    load_phases, load_setup = load
    production, production_setup = production_run(quick)
    interval = production_setup["waits"]["baseline_interval"]
    costs = {phase.name: phase_costs(phase, None) for phase in load_phases}
    costs.update({phase.name: phase_costs(phase, interval) for phase in production})
    header = ["run / path", "jobs", "status calls", "max", "Lambda req", "GB-s", "transitions", "WRU", "RRU",
              "S3 PUT/GET", "SNS", "secrets", "$ / job", "fixed: status", "fixed: $ / job", "ratio"]  # fmt: skip
    rows = [_row(name, c) for name, c in costs.items()]
    print(f"cost per job: counted operations at us-east-1 prices, next to fixed {interval:.0f} s polling (per job)")
    print(table(header, rows))

    callback_max = max(costs[n]["status_calls_per_job"]["max"] for n in ("callback", "callback (production waits)"))
    report.check(
        "status calls per job when the callback arrives (load run and production waits)",
        f"<= {CALLBACK_STATUS_TARGET}",
        f"max {callback_max} over {costs['callback']['jobs'] + costs['callback (production waits)']['jobs']} jobs",
        callback_max <= CALLBACK_STATUS_TARGET,
    )
    poll_costs = costs["poll-only (production waits)"]
    poll_max = poll_costs["status_calls_per_job"]["max"]
    seconds = poll_costs["provider_seconds"]
    report.check(
        f"status calls for a {production_setup['waits']['poll_only_job']:.0f} s job on a poll-only provider",
        f"<= {POLL_ONLY_STATUS_TARGET}",
        f"max {poll_max}, by provider {poll_costs['status_calls_by_provider']} (provider time {seconds})",
        poll_max <= POLL_ONLY_STATUS_TARGET,
    )
    report.figures = {"load_setup": load_setup, "production_setup": production_setup, "paths": costs}
    report.notes.append(
        "The load run uses local-mode waits (first poll 1 s, 8 s for callback providers, then 1-3 s) and 3 s "
        "provider jobs: its status calls and transitions are not production figures, and it has no fixed-interval "
        "baseline (at 3 s jobs it would be one poll)."
    )
    report.notes.append(
        "Lambda GB-s are in-process handler times on this machine (all functions share one interpreter), "
        "billed per started millisecond at the deployed memory sizes."
    )
    if quick:
        report.notes.append("--quick: production waits divided by 15 (150 s job -> 10 s; 15/120 s waits -> 1/8 s).")
    return report
