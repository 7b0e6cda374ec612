"""`kling-relay demo` and `kling-relay serve`: the whole system on this machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from pathlib import Path

from local.system import LocalOptions, LocalSystem

LOG_FILE = Path(".build") / "local" / "functions.log"


def demo(args: argparse.Namespace) -> int:
    from local.demo import render, run_demo

    def say(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    say("starting the local stack (synthesizing the CDK app on first run, then deploying it into the emulator)...")
    with LocalSystem(LocalOptions(log_file=LOG_FILE)) as stack:
        say(f"API {stack.base_url}   AWS emulator {stack.aws.endpoint_url}\n")
        report = run_demo(stack, say)
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print()
        print(render(report))
        print(f"\nfunction logs: {LOG_FILE}")
    return 0 if report.ok else 1


def serve(args: argparse.Namespace) -> int:
    options = LocalOptions(
        api_port=args.port, emulator_port=args.emulator_port, console_port=args.console_port, log_file=LOG_FILE
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalSystem(options) as stack:
        key = stack.create_api_key(args.tenant)
        ready = {**stack.describe(), "api_key": key.api_key, "tenant": key.tenant, "webhook_secret": key.webhook_secret}
        if args.json:
            print(json.dumps(ready), flush=True)
        else:
            print(f"Kling Relay is running locally.\n\n  API        {ready['base_url']}")
            print(f"  API key    {key.api_key}   (tenant {key.tenant})")
            if ready["console_url"]:
                print(f"  console    {ready['console_url']}   (sign in with the API key)")
            print(f"  webhook    {key.webhook_secret}")
            print(f"  AWS        {ready['aws_endpoint_url']}   (AWS_ENDPOINT_URL for the aws CLI / kling-relay keys)")
            print(f"  providers  {ready['emulator_url']}   (emulator; control API at /_control)")
            print(f"  logs       {LOG_FILE}\n")
            print(f"  export KLING_RELAY_URL={ready['base_url']} KLING_RELAY_API_KEY={key.api_key}")
            print("  kling-relay submit --prompt 'a fox in the snow' --wait\n\nCtrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("demo", help="run the whole system end to end on this machine")
    run.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    run.set_defaults(run=demo)
    up = commands.add_parser("serve", help="run the whole system locally until interrupted")
    up.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    up.add_argument("--emulator-port", type=int, default=0)
    up.add_argument("--console-port", type=int, default=0, help="web console port (default: a free one)")
    up.add_argument("--tenant", default="local")
    up.add_argument("--json", action="store_true", help="print one JSON line when ready")
    up.set_defaults(run=serve)
