"""`kling-relay demo`: real jobs through the local stack, checked end to end.

Jobs on all five providers, text- and image-to-video (first and last frame on APIMart), motion control
routed by `auto`, sound where allowed, completions by callback and by polling, and one job that fails
with a clear error. Every
archived video is downloaded again and compared with the bytes the provider emulator served, and
the SNS events are read back through an SQS subscription. The exit status says whether it all held.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kling_relay import ChecksumMismatchError, Job, KlingRelay, KlingRelayError

from local.system import LocalSystem

FAILING_PROMPT = "a city street at night [moderation-test]"
FAILURE_MESSAGE = "the prompt was refused by content moderation"
DEADLINE_SECONDS = 90.0


@dataclass(frozen=True)
class DemoJob:
    label: str
    request: dict[str, Any]
    expect_status: str
    expect_completion: str  # "callback" or "poll"

    @property
    def mode(self) -> str:
        if "motion_control" in self.request:
            return "motion control"
        if "last_frame_url" in self.request:
            return "first+last frame"
        return "image-to-video" if "first_frame_url" in self.request else "text-to-video"


def demo_jobs(first_frame: str, last_frame: str, motion_video: str) -> list[DemoJob]:
    def job(label: str, expect: str, completion: str, **request: Any) -> DemoJob:
        return DemoJob(label, request, expect, completion)

    return [
        job(
            "vidgo t2v + sound", "succeeded", "callback",
            provider="vidgo", prompt="a lighthouse in a storm", sound=True,
        ),
        job(
            "kie t2v + sound", "succeeded", "callback",
            provider="kie", prompt="a fox running through snow", sound=True, aspect_ratio="9:16",
        ),
        job(
            "kie i2v", "succeeded", "callback",
            provider="kie", prompt="the scene comes alive", first_frame_url=first_frame,
        ),
        job(
            "aimlapi t2v + sound", "succeeded", "poll",
            provider="aimlapi", prompt="waves on a black sand beach", negative_prompt="people", sound=True, duration=10,
        ),
        job(
            "pixwith i2v x2", "succeeded", "poll",
            provider="pixwith", prompt="a paper boat drifting", first_frame_url=first_frame, num_outputs=2,
        ),
        job(
            "apimart first+last", "succeeded", "poll",
            provider="apimart", prompt="a flower opening", quality="pro",
            first_frame_url=first_frame, last_frame_url=last_frame,
        ),
        job(
            "apimart t2v pro + sound", "succeeded", "poll",
            provider="apimart", prompt="rain on a tin roof", quality="pro", sound=True,
        ),
        job(
            "auto motion control", "succeeded", "callback",
            prompt="the character dances", motion_control={"image_url": first_frame, "video_url": motion_video},
        ),
        job("kie t2v -> refused", "failed", "callback", provider="kie", prompt=FAILING_PROMPT),
    ]  # fmt: skip


@dataclass
class Row:
    label: str
    job_id: str
    provider: str
    mode: str
    completed_by: str
    status: str
    seconds: float
    bytes: int
    sha256: str  # the first output's, in full (the table shortens it)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # each output's bytes and full sha256
    error: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class DemoReport:
    rows: list[Row]
    events: list[dict[str, Any]]
    problems: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems and all(not row.problems for row in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "jobs": [asdict(row) for row in self.rows],
            "events": self.events,
            "problems": self.problems + [f"{row.label}: {p}" for row in self.rows for p in row.problems],
        }


def _verify_outputs(stack: LocalSystem, api: KlingRelay, job: Job, row: Row) -> None:
    """Archived bytes must equal what the provider served, and match the recorded checksum."""
    assert stack.emulator is not None
    task = stack.emulator.task(job.provider_task_id or "")
    served_urls = task.result_urls if task is not None else []
    if len(job.outputs) != len(served_urls):
        row.problems.append(f"{len(job.outputs)} outputs archived for {len(served_urls)} results")
    with tempfile.TemporaryDirectory() as folder, httpx.Client(timeout=30) as http:
        for index, source in enumerate(served_urls[: len(job.outputs)]):
            try:
                # The SDK checks the archived bytes against the job's recorded size and SHA-256.
                archived = api.jobs.download(job, Path(folder) / f"{index}.mp4", output=index).read_bytes()
            except ChecksumMismatchError:
                row.problems.append("archived object does not match its recorded checksum or size")
                continue
            except KlingRelayError as exc:
                row.problems.append(f"archived output {index} could not be downloaded: {exc}")
                continue
            if archived != http.get(source).content:
                row.problems.append("archived bytes differ from the provider's result")
    row.bytes = sum(output.bytes for output in job.outputs)
    row.sha256 = job.outputs[0].sha256 if job.outputs else "-"
    row.outputs = [{"bytes": output.bytes, "sha256": output.sha256} for output in job.outputs]


def run_demo(stack: LocalSystem, say: Callable[[str], None] = print) -> DemoReport:
    assert stack.emulator is not None
    started = time.monotonic()
    key = stack.create_api_key("demo")
    events_queue = stack.subscribe_events("kling-relay-demo-events")
    stack.emulator.add_fault("generation_failed", match_prompt="[moderation-test]", message=FAILURE_MESSAGE)
    api = KlingRelay(stack.base_url, key.api_key)
    assets = stack.emulator.asset_url
    plan = demo_jobs(assets("first.png"), assets("last.png"), assets("motion.mp4"))

    submitted: dict[str, tuple[DemoJob, float]] = {}
    with api:
        for item in plan:
            job = api.jobs.create(**item.request)
            submitted[job.id] = (item, time.monotonic())
            say(f"  submitted {item.label:<26} -> {job.id} on {job.provider} ({job.status})")
        finished = _watch(api, submitted, started, say)
        rows = [
            _check(stack, api, item, *finished[job_id]) for job_id, (item, _) in submitted.items() if job_id in finished
        ]

    problems = [
        f"{item.label}: not finished after {DEADLINE_SECONDS:.0f} s"
        for job_id, (item, _) in submitted.items()
        if job_id not in finished
    ]
    if stack.events is not None:
        stack.events.wait_idle(10)
    events = [
        {"id": event["id"], "type": event["type"], "job_id": event["data"]["id"]}
        for event in stack.take_events(events_queue)
    ]
    for row in rows:
        final = f"job.{row.status}"
        count = sum(1 for e in events if e["job_id"] == row.job_id and e["type"] == final)
        if count != 1:
            row.problems.append(f"expected one {final} event, got {count}")
    ids = [e["id"] for e in events]
    if len(ids) != len(set(ids)):
        problems.append("an event id was published twice")
    return DemoReport(rows=rows, events=events, problems=problems, seconds=time.monotonic() - started)


def _watch(
    api: KlingRelay, submitted: dict[str, tuple[DemoJob, float]], started: float, say: Callable[[str], None]
) -> dict[str, tuple[Job, float]]:
    """Show every change of status or progress until all jobs finish (or the deadline passes)."""
    seen: dict[str, str] = {}
    finished: dict[str, tuple[Job, float]] = {}
    while len(finished) < len(submitted) and time.monotonic() - started < DEADLINE_SECONDS:
        for job_id, (item, at) in submitted.items():
            if job_id in finished:
                continue
            job = api.jobs.get(job_id)
            state = job.status + (f" {job.progress}%" if job.progress is not None else "")
            if job.waiting is not None:
                state += f" (waiting: {job.waiting.reason})"
            if seen.get(job_id) != state:
                seen[job_id] = state
                say(f"  {time.monotonic() - started:5.1f}s  {item.label:<26} {state}")
            if job.terminal:
                finished[job_id] = (job, time.monotonic() - at)
        time.sleep(0.5)
    return finished


def _check(stack: LocalSystem, api: KlingRelay, item: DemoJob, job: Job, seconds: float) -> Row:
    row = Row(
        label=item.label,
        job_id=job.id,
        provider=job.provider,
        mode=item.mode,
        completed_by=job.completed_by or "-",
        status=job.status,
        seconds=round(seconds, 1),
        bytes=0,
        sha256="-",
        error=job.error.message if job.error is not None else None,
    )
    if job.status != item.expect_status:
        row.problems.append(f"expected {item.expect_status}, got {job.status}")
    if row.completed_by != item.expect_completion:
        row.problems.append(f"expected completion by {item.expect_completion}, got {row.completed_by}")
    if job.status == "succeeded":
        _verify_outputs(stack, api, job, row)
    elif item.expect_status == "failed" and FAILURE_MESSAGE not in (row.error or ""):
        row.problems.append("the failure does not carry the provider's reason")
    return row


def render(report: DemoReport) -> str:
    header = ["job", "provider", "mode", "completed by", "status", "seconds", "bytes", "sha256"]
    table = [header] + [
        [r.label, r.provider, r.mode, r.completed_by, r.status, f"{r.seconds:.1f}", str(r.bytes), r.sha256[:16]]
        for r in report.rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for row in report.rows:
        if row.error:
            lines.append(f"\n{row.label}: {row.error}")
    lines.append(f"\nSNS events received through an SQS subscription ({len(report.events)}):")
    for row in report.rows:
        types = [e["type"] for e in report.events if e["job_id"] == row.job_id]
        lines.append(f"  {row.label:<26} {' -> '.join(types)}")
    problems = report.problems + [f"{r.label}: {p}" for r in report.rows for p in r.problems]
    lines.append("")
    lines.extend(f"PROBLEM: {p}" for p in problems)
    lines.append(f"{'all checks passed' if report.ok else 'FAILED'} in {report.seconds:.1f} s")
    return "\n".join(lines)
