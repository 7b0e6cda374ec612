"""A burst: many jobs posted at once from many client threads, against providers that enforce their limits.

Run 1: 300 jobs naming `provider=kie` from 16 threads, 3 s provider jobs, the emulator at Kie's documented
limit (20 new tasks per 10 s, 100 in flight). Run 2: 500 `auto` jobs, every provider limited as the relay's
defaults assume (Kie's documented limit; 10 per 10 s and 50 in flight for the four that publish none).

Reported: POST latency (p50/p99; the relay should answer 202 at once and hand jobs on at the providers'
pace), answers other than 202, how the jobs ended, submits the emulator refused for a limit as a share of all
submits it saw (pacing, not hammering), and the makespan (first POST to the last job's terminal status
stored) against the limit's minimum (jobs / rate, 300 / 2 per s = 150 s for run 1); for run 2 the
throughput against the sum of the providers' rates.

The posting tenant is on the `pro` tier, so the gateway's usage plan does not throttle the burst itself.
Completion is learnt from the job events (an SQS queue of our own on the topic), never by asking the API.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from kling_relay import TERMINAL_STATUSES as TERMINAL

from bench.common import Report, percentile, table
from bench.load import EventCollector
from local.provider_emulator import KIE_DOCUMENTED_LIMIT, ProviderLimit
from local.system import LocalOptions, LocalSystem
from shared.models.common import PROVIDER_NAMES, ProviderName
from shared.pacing.limits import DEFAULT_PROVIDER_LIMITS
from shared.repository.keys import TenantLimits

JOB_SECONDS = 3.0
# The functions a burst keeps busy, in processes of their own as on Lambda: the api (every POST), dispatch (each
# job's rounds, some waiting up to a second for a booked slot), notify (every stored change) and archive (every
# finished job's video; its stream mapping runs up to 10 batches at once).
SANDBOXES = {"api": 4, "dispatch": 6, "notify": 1, "archive": 2}
KIE_JOBS, AUTO_JOBS, THREADS = 300, 500, 16
QUICK_KIE_JOBS, QUICK_AUTO_JOBS, QUICK_THREADS = 60, 60, 8
POST_P99_TARGET = 0.5
RATE_LIMITED_SHARE_TARGET = 0.05
MAKESPAN_RATIO_TARGET = 1.15
# A team posting a campaign's clips at once is on the pro tier (100 requests/s, burst 200): the standard tier's
# 10/s would have the gateway refuse the burst (429) before the relay sees it.
TENANT_TIER = "pro"
# The emulated providers enforce what the relay's pacing assumes of them: Kie its documented limit, the four that
# publish none the relay's conservative defaults (10 new tasks per 10 s, 50 in flight).
LIMITS: dict[ProviderName, ProviderLimit] = {
    name: ProviderLimit(
        submits_per_window=relay.submits_per_window,
        window_seconds=relay.window_seconds,
        max_concurrent=relay.max_in_flight,
    )
    for name, relay in DEFAULT_PROVIDER_LIMITS.items()
}
assert LIMITS["kie"] == KIE_DOCUMENTED_LIMIT, "the relay's Kie default is Kie's documented limit"


def rate(limit: ProviderLimit) -> float:
    """New tasks per second the limit allows in the long run."""
    if limit.submits_per_window is None or limit.window_seconds is None:
        raise ValueError("the burst needs a window rate on every provider it uses")
    return limit.submits_per_window / limit.window_seconds


@dataclass
class Post:
    index: int
    started: float  # wall clock
    seconds: float
    status: int  # 0: no answer (the client gave up or the connection failed)
    job_id: str | None = None
    error: str | None = None


@dataclass
class Burst:
    name: str
    provider: str  # "kie" or "auto"
    jobs: int
    threads: int
    posts: list[Post] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # job id -> terminal status ("unfinished" if none)
    ended_at: dict[str, float] = field(default_factory=dict)  # job id -> terminal status stored (event created_at)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # emulator counters per provider
    task_times: list[float] = field(default_factory=list)  # emulator task creation times
    limits: dict[str, ProviderLimit] = field(default_factory=dict)


class BurstRig:
    """A local stack with every provider limited, an API key, and our subscription to the job events."""

    def __init__(self, limits: Mapping[ProviderName, ProviderLimit], job_seconds: float = JOB_SECONDS) -> None:
        self.limits = dict(limits)
        options = LocalOptions(job_seconds=job_seconds, provider_limits=dict(self.limits), sandboxes=SANDBOXES)
        self.stack = LocalSystem(options)

    def __enter__(self) -> BurstRig:
        stack = self.stack.start()
        try:
            self.api_key = stack.create_api_key("burst", TenantLimits(tier=TENANT_TIER)).api_key
            sqs = stack.aws.client("sqs")
            self.collector = EventCollector(sqs, stack.subscribe_events("burst-events"))
            self.collector.start()
        except BaseException:
            stack.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.collector.stop()
        self.stack.stop()

    @property
    def emulator(self) -> Any:
        assert self.stack.emulator is not None
        return self.stack.emulator

    def burst(self, name: str, provider: str, jobs: int, threads: int, say: Callable[[str], None] = print) -> Burst:
        """Post `jobs` jobs from `threads` threads at once, then wait for every accepted job to end."""
        self.emulator.reset()  # counters and tasks of this burst only; the limits stay
        result = Burst(name, provider, jobs, threads, limits={p: self.limits[p] for p in self._providers(provider)})
        say(f"  {name}: {jobs} jobs (provider={provider}) from {threads} threads")
        # The clients run in a process of their own, as an app's would: not on the relay's interpreter.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as clients:
            posts = clients.submit(post_all, self.stack.base_url, self.api_key, provider, jobs, threads)
            result.posts = posts.result()
        result.posts.sort(key=lambda p: p.index)
        accepted = [p.job_id for p in result.posts if p.job_id]
        posted = time.time() - min(p.started for p in result.posts)
        say(f"  {name}: {len(accepted)} of {jobs} accepted in {posted:.1f} s; waiting for them to end")
        self._wait(result, accepted, say)
        result.stats = {name: stats.model_dump() for name, stats in self.emulator.stats().items()}
        result.task_times = sorted(task.created_at for task in self.emulator.tasks())
        return result

    def _providers(self, provider: str) -> list[ProviderName]:
        return list(PROVIDER_NAMES) if provider == "auto" else [p for p in PROVIDER_NAMES if p == provider]

    def _wait(self, result: Burst, job_ids: list[str], say: Callable[[str], None]) -> None:
        slowest = min(rate(limit) for limit in result.limits.values())
        deadline = time.monotonic() + 120 + 3 * len(job_ids) / max(slowest, 0.1)
        pending = set(job_ids)
        next_note = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                final = next((e for e in self.collector.events(job_id) if _status(e.type) in TERMINAL), None)
                if final is not None:
                    result.statuses[job_id] = _status(final.type)
                    result.ended_at[job_id] = final.created_at
                    pending.discard(job_id)
            if time.monotonic() > next_note:
                say(f"    {len(job_ids) - len(pending)} of {len(job_ids)} ended")
                next_note += 30
            time.sleep(0.5)
        for job_id in pending:
            result.statuses[job_id] = "unfinished"


def post_all(base_url: str, api_key: str, provider: str, jobs: int, threads: int) -> list[Post]:
    """Post `jobs` jobs from `threads` threads at once, each thread with its own connection."""
    pending = iter(range(jobs))
    posts: list[Post] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def client() -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60, trust_env=False
        ) as http:
            start.wait()
            while True:
                with lock:
                    index = next(pending, None)
                if index is None:
                    return
                post = _post(http, index, provider)
                with lock:
                    posts.append(post)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(client) for _ in range(threads)]:
            future.result()
    return posts


def _status(event_type: str) -> str:
    return event_type.removeprefix("job.")


def _post(http: httpx.Client, index: int, provider: str) -> Post:
    body = {"provider": provider, "prompt": f"a paper boat drifting down a rainy street, shot {index}"}
    started, clock = time.time(), time.perf_counter()
    try:
        response = http.post("/jobs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    except httpx.HTTPError as exc:
        return Post(index, started, time.perf_counter() - clock, 0, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - clock
    if response.status_code != 202:
        return Post(index, started, seconds, response.status_code, error=response.text[:300])
    return Post(index, started, seconds, 202, job_id=response.json()["id"])


def summarize(burst: Burst) -> dict[str, Any]:
    latencies = [p.seconds for p in burst.posts]
    refused = Counter(str(p.status or "no answer") for p in burst.posts if p.status != 202)
    ended = Counter(burst.statuses.values())
    submits = sum(burst.stats[p]["submits"] for p in burst.limits)
    limited = sum(burst.stats[p]["submits_rate_limited"] for p in burst.limits)
    allowed_rate = sum(rate(limit) for limit in burst.limits.values())
    first_post = min(p.started for p in burst.posts)
    makespan = (max(burst.ended_at.values()) - first_post) if burst.ended_at else None
    minimum = burst.jobs / allowed_rate
    succeeded = ended.get("succeeded", 0)
    dispatch_span = (burst.task_times[-1] - first_post) if burst.task_times else None
    return {
        "jobs": burst.jobs,
        "threads": burst.threads,
        "provider": burst.provider,
        "post_p50_s": round(percentile(latencies, 50), 3),
        "post_p99_s": round(percentile(latencies, 99), 3),
        "post_max_s": round(max(latencies), 3),
        "answers_other_than_202": dict(refused),
        "non_202": sum(refused.values()),
        "first_errors": [p.error for p in burst.posts if p.error][:3],
        "ended": dict(ended),
        "succeeded": succeeded,
        "provider_submits": submits,
        "provider_submits_rate_limited": limited,
        "rate_limited_share": round(limited / submits, 4) if submits else 0.0,
        "per_provider": {
            p: {k: burst.stats[p][k] for k in ("submits", "submits_accepted", "submits_rate_limited")}
            for p in burst.limits
        },
        "allowed_rate_per_s": round(allowed_rate, 3),
        "minimum_makespan_s": round(minimum, 1),
        "makespan_s": None if makespan is None else round(makespan, 1),
        "makespan_ratio": None if makespan is None else round(makespan / minimum, 3),
        "last_provider_task_after_s": None if dispatch_span is None else round(dispatch_span, 1),
        "throughput_per_s": None if not makespan else round(succeeded / makespan, 3),
        "limits": {p: limit.model_dump(exclude={"retry_after"}) for p, limit in burst.limits.items()},
    }


def check(report: Report, label: str, summary: dict[str, Any], throughput: bool) -> None:
    jobs = summary["jobs"]
    report.check(
        f"{label}: POST p99",
        f"< {POST_P99_TARGET} s",
        f"{summary['post_p99_s']:.3f} s (p50 {summary['post_p50_s']:.3f} s)",
        summary["post_p99_s"] < POST_P99_TARGET,
    )
    report.check(
        f"{label}: answers other than 202", "0", f"{summary['non_202']} {summary['answers_other_than_202'] or ''}",
        summary["non_202"] == 0,
    )  # fmt: skip
    report.check(
        f"{label}: jobs succeeded", f"all {jobs}", f"{summary['succeeded']} {summary['ended']}",
        summary["succeeded"] == jobs,
    )  # fmt: skip
    share = summary["rate_limited_share"]
    report.check(
        f"{label}: provider submits refused for a limit",
        f"< {RATE_LIMITED_SHARE_TARGET:.0%} of submits",
        f"{share:.1%} ({summary['provider_submits_rate_limited']} of {summary['provider_submits']})",
        share < RATE_LIMITED_SHARE_TARGET,
    )
    ratio = summary["makespan_ratio"]
    measured = (
        "no job ended"
        if ratio is None
        else f"{summary['makespan_s']} s = {ratio:.2f}x the minimum {summary['minimum_makespan_s']} s"
    )
    if throughput and summary["throughput_per_s"] is not None:
        measured += f"; {summary['throughput_per_s']} jobs/s of {summary['allowed_rate_per_s']}/s allowed"
    report.check(
        f"{label}: makespan against the limits' minimum",
        f"<= {MAKESPAN_RATIO_TARGET}x",
        measured,
        ratio is not None and ratio <= MAKESPAN_RATIO_TARGET and summary["succeeded"] == jobs,
    )


def run(
    quick: bool,
    kie_jobs: int | None = None,
    auto_jobs: int | None = None,
    threads: int | None = None,
    job_seconds: float = JOB_SECONDS,
    say: Callable[[str], None] = print,
) -> Report:
    kie_jobs = kie_jobs if kie_jobs is not None else (QUICK_KIE_JOBS if quick else KIE_JOBS)
    auto_jobs = auto_jobs if auto_jobs is not None else (QUICK_AUTO_JOBS if quick else AUTO_JOBS)
    threads = threads or (QUICK_THREADS if quick else THREADS)
    command = "python -m bench burst" + (" --quick" if quick else "")
    if (kie_jobs, auto_jobs, threads) != ((QUICK_KIE_JOBS, QUICK_AUTO_JOBS, QUICK_THREADS) if quick else
                                          (KIE_JOBS, AUTO_JOBS, THREADS)):  # fmt: skip
        command += f" --burst-jobs {kie_jobs} --burst-auto-jobs {auto_jobs} --burst-threads {threads}"
    report = Report("burst", command, quick)
    load_before = os.getloadavg()
    say("  starting the local stack (every provider limited)")
    bursts: list[Burst] = []
    with BurstRig(LIMITS, job_seconds) as rig:
        if kie_jobs:
            bursts.append(rig.burst("kie", "kie", kie_jobs, threads, say))
        if auto_jobs:
            bursts.append(rig.burst("auto", "auto", auto_jobs, threads, say))
    summaries = {burst.name: summarize(burst) for burst in bursts}
    rows = [
        [name, s["jobs"], s["threads"], f"{s['post_p50_s']:.3f}", f"{s['post_p99_s']:.3f}", s["non_202"],
         s["succeeded"], f"{s['rate_limited_share']:.1%}", s["makespan_s"], s["minimum_makespan_s"],
         s["makespan_ratio"], s["throughput_per_s"]]
        for name, s in summaries.items()
    ]  # fmt: skip
    header = ["run", "jobs", "threads", "POST p50 s", "POST p99 s", "non-202", "succeeded", "limited",
              "makespan s", "minimum s", "ratio", "jobs/s"]  # fmt: skip
    print(table(header, rows))
    for name, summary in summaries.items():
        check(report, f"{name} ({summary['jobs']} jobs)", summary, throughput=name == "auto")
        for error in summary["first_errors"]:
            report.notes.append(f"{name}: e.g. {error}")
    load_after = os.getloadavg()
    # The whole stack shares this machine's cores with anything else running: the load says how much.
    report.notes.append(
        f"load average (1/5/15 min) {'/'.join(f'{v:.1f}' for v in load_before)} before, "
        f"{'/'.join(f'{v:.1f}' for v in load_after)} after, on {os.cpu_count()} cores"
    )
    report.figures = {"provider_job_seconds": job_seconds, "runs": summaries, "load_average": [load_before, load_after]}
    if quick:
        report.notes.append(f"--quick: {kie_jobs} kie and {auto_jobs} auto jobs from {threads} threads.")
    return report
