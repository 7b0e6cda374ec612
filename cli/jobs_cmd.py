"""`kling-relay submit` and `kling-relay jobs get|list|cancel`, against any deployment, through the SDK."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from kling_relay import (
    KEY_VARIABLE,
    URL_VARIABLE,
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    Job,
    KlingRelay,
    WaitTimeoutError,
)


def client() -> KlingRelay:
    url, key = os.environ.get(URL_VARIABLE), os.environ.get(KEY_VARIABLE)
    if not url or not key:
        raise SystemExit(f"set {URL_VARIABLE} (e.g. https://<api>/v1) and {KEY_VARIABLE}")
    try:
        return KlingRelay(url, key)
    except ConfigurationError as exc:
        raise SystemExit(str(exc)) from exc


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def progress_line(job: Job, width: int = 30) -> str:
    percent = job.progress
    filled = round(width * (percent or 0) / 100)
    bar = "#" * filled + "-" * (width - filled)
    shown = f"{percent:3d}%" if isinstance(percent, int) else "  ?%"
    line = f"\r{job.id}  [{bar}] {shown}  {job.status:<10}"
    if job.waiting is not None:
        until = f" until {_timestamp(job.waiting.next_attempt_at)}" if job.waiting.next_attempt_at else ""
        line += f" waiting: {job.waiting.reason}{until}"
    return line


def _print_result(job: Job) -> None:
    print()
    if job.status == "succeeded":
        for index, output in enumerate(job.outputs):
            print(f"output {index}: {output.bytes} bytes  sha256 {output.sha256}")
            print(f"  {output.url}")
            print(f"  (link valid until {_timestamp(output.expires_at)})")
    elif job.error is not None:
        print(f"{job.status}: {job.error.code}: {job.error.message}")


def submit(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"provider": args.provider}
    if bool(args.motion_image) != bool(args.motion_video):
        print("error: motion control needs both --motion-image and --motion-video", file=sys.stderr)
        return 2
    if args.motion_image:
        request["motion_control"] = {
            "image_url": args.motion_image,
            "video_url": args.motion_video,
            "character_orientation": args.orientation,
        }
    optional = {
        "prompt": args.prompt,
        "duration": args.duration,
        "first_frame_url": args.first_frame,
        "last_frame_url": args.last_frame,
        "aspect_ratio": args.aspect_ratio,
        "quality": args.quality,
        "webhook_url": args.webhook_url,
        "negative_prompt": args.negative_prompt,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    if args.sound:
        request["sound"] = True
    api = client()
    job = api.jobs.create(**request, idempotency_key=args.idempotency_key)
    if not args.wait:
        print(json.dumps(job.to_dict(), indent=2))
        return 0
    interactive = sys.stdout.isatty()

    def show(current: Job) -> None:
        line = progress_line(current)
        print(line if interactive else line.lstrip("\r"), end="" if interactive else "\n", flush=True)

    final = api.jobs.wait(job.id, timeout=args.timeout, on_progress=show)
    _print_result(final)
    return 0 if final.status == "succeeded" else 1


def get(args: argparse.Namespace) -> int:
    print(json.dumps(client().jobs.get(args.job_id).to_dict(), indent=2))
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    page = client().jobs.list_page(status=args.status, provider=args.provider, limit=args.limit, cursor=args.cursor)
    if args.json:
        print(json.dumps(page.to_dict(), indent=2))
        return 0
    for job in page.items:
        prompt = (job.request.prompt or "(motion control)")[:40]
        print(f"{job.id}  {job.status:<10} {job.provider:<8} {_timestamp(job.created_at)}  {prompt}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


def cancel(args: argparse.Namespace) -> int:
    print(json.dumps(client().jobs.cancel(args.job_id).to_dict(), indent=2))
    return 0


def run_guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except APIStatusError as exc:
            print(f"error: {exc.status_code} {exc.code}: {exc.message}", file=sys.stderr)
            if exc.details:
                print(json.dumps(exc.details, indent=2), file=sys.stderr)
            return 1
        except (APIConnectionError, WaitTimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    made = commands.add_parser("submit", help=f"submit a job (uses ${URL_VARIABLE}, ${KEY_VARIABLE})")
    made.add_argument("--prompt", help="required, but for motion control")
    made.add_argument("--provider", default="auto", choices=["auto", "vidgo", "kie", "aimlapi", "pixwith", "apimart"])
    made.add_argument("--duration", type=int, choices=[5, 10], help="seconds (default 5; not for motion control)")
    made.add_argument("--motion-image", metavar="URL", help="motion control: the character to animate")
    made.add_argument("--motion-video", metavar="URL", help="motion control: the reference video (3-10 s, or 3-30 s)")
    made.add_argument(
        "--orientation",
        choices=["image", "video"],
        default="image",
        help="motion control: keep the image's orientation (default) or follow the video's",
    )
    made.add_argument("--aspect-ratio", choices=["16:9", "9:16", "1:1"])
    made.add_argument("--quality", choices=["std", "pro"])
    made.add_argument("--first-frame")
    made.add_argument("--last-frame")
    made.add_argument("--negative-prompt")
    made.add_argument("--sound", action="store_true")
    made.add_argument("--webhook-url")
    made.add_argument("--idempotency-key")
    made.add_argument("--wait", action="store_true", help="show progress and wait for the result")
    made.add_argument("--timeout", type=float, default=1800.0)
    made.set_defaults(run=run_guarded(submit))

    jobs = commands.add_parser("jobs", help="read, list and cancel jobs").add_subparsers(
        dest="jobs_command", required=True
    )
    one = jobs.add_parser("get")
    one.add_argument("job_id")
    one.set_defaults(run=run_guarded(get))
    many = jobs.add_parser("list")
    many.add_argument("--status")
    many.add_argument("--provider")
    many.add_argument("--limit", type=int, default=20)
    many.add_argument("--cursor")
    many.add_argument("--json", action="store_true")
    many.set_defaults(run=run_guarded(list_jobs))
    stop = jobs.add_parser("cancel")
    stop.add_argument("job_id")
    stop.set_defaults(run=run_guarded(cancel))
