"""`kling-relay probe`: check a provider key against the real API, and optionally record a real job as fixtures.

The key is read from an environment variable (`KLING_RELAY_<PROVIDER>_KEY` unless `--key-env` names
another), so it stays out of shell history. Without `--submit` nothing is paid for: the cheapest documented
call that needs a valid key is made (a balance endpoint where one exists; otherwise a status query for a
task that does not exist, read for the authentication answer). With `--submit` one 5 s text-to-video job is
run to its end; with `--record DIR` every request and answer is stored there, sanitised, as test fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shared.models.common import PROVIDER_NAMES, ProviderName
from shared.providers.base import ProbeOutcome, Provider, ProviderState
from shared.providers.errors import ProviderError
from shared.providers.recording import PROBE_JOB, Operation, fixture
from shared.providers.registry import PROVIDER_CLASSES
from shared.settings import DEFAULT_BASE_URLS, ProviderEndpoint


class Recorder:
    """Keeps every exchange the adapter makes, and writes each as a numbered fixture when asked."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.responses: list[httpx.Response] = []
        self.written: list[Path] = []

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)

    def write(self, adapter: Provider, operation: Operation, *, task_id: str | None = None) -> None:
        if self.directory is None or not self.responses:
            return
        document = fixture(adapter, operation, self.responses[-1], task_id=task_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"recorded_{len(self.written) + 1:02d}_{operation}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        self.written.append(path)


def run(args: argparse.Namespace) -> int:
    name: ProviderName = args.provider
    env = args.key_env or f"KLING_RELAY_{name.upper()}_KEY"
    api_key = os.environ.get(env, "")
    if not api_key:
        print(f"error: set {env} to the {name} API key (or name another variable with --key-env)", file=sys.stderr)
        return 2
    recorder = Recorder(Path(args.record) if args.record else None)
    base_url = (args.base_url or DEFAULT_BASE_URLS[name]).rstrip("/")
    http = httpx.Client(
        timeout=httpx.Timeout(30.0, connect=10.0), trust_env=False, event_hooks={"response": [recorder.hook]}
    )
    adapter = PROVIDER_CLASSES[name](ProviderEndpoint(base_url=base_url), api_key, http)
    print(f"{name} at {base_url}")
    try:
        report = adapter.probe()
    except ProviderError as err:
        print(f"  key check: could not reach the API: {err.message}")
        return 1
    recorder.write(adapter, "probe")
    balance = "" if report.balance is None else f"; balance {report.balance:g} credits"
    print(f"  key check: {report.outcome.value}: {report.detail}{balance}")
    if report.outcome is not ProbeOutcome.KEY_ACCEPTED:
        return 1
    if not args.submit:
        return 0
    return _run_job(adapter, recorder, args.timeout, args.interval)


def _run_job(adapter: Provider, recorder: Recorder, timeout: float, interval: float) -> int:
    print(f"  submitting one {PROBE_JOB.duration} s text-to-video job (this is charged by the provider)")
    try:
        submitted = adapter.submit(PROBE_JOB, None)
    except ProviderError as err:
        recorder.write(adapter, "submit")
        print(f"  submit refused: {err.kind.value}: {err.message}")
        return 1
    recorder.write(adapter, "submit")
    print(f"  task {submitted.task_id}")
    deadline = time.monotonic() + timeout
    seen: set[tuple[str, str]] = set()
    unrecognized = 0
    succeeded = False
    while True:
        try:
            status = adapter.status(submitted.task_id)
        except ProviderError as err:
            recorder.write(adapter, "status", task_id=submitted.task_id)
            print(f"  status: {err.kind.value}: {err.message}")
            unrecognized += err.unrecognized
        else:
            if (status.state.value, status.raw_status) not in seen or status.state.terminal:
                seen.add((status.state.value, status.raw_status))
                recorder.write(adapter, "status", task_id=submitted.task_id)
                print(f"  status: {status.raw_status} ({status.state.value})" + _extra(status.model_dump()))
            unrecognized += status.unrecognized is not None
            if status.state.terminal and status.unrecognized is None:
                succeeded = status.state is ProviderState.SUCCEEDED
                break
        if time.monotonic() > deadline:
            print(f"  no end within {timeout:.0f} s; the task may still finish at the provider")
            break
        time.sleep(interval)
    for path in recorder.written:
        print(f"  recorded {path}")
    if unrecognized:
        print(f"  {unrecognized} answer(s) were not recognised: the adapter needs a look (see the recorded files)")
    return 0 if succeeded and not unrecognized else 1


def _extra(status: dict[str, Any]) -> str:
    parts = []
    if status["result_urls"]:
        parts.append(f"{len(status['result_urls'])} result URL(s)")
    if status["error_message"]:
        parts.append(f"error: {status['error_message']}")
    if status["unrecognized"]:
        parts.append(f"unrecognised: {status['unrecognized']}")
    return f" - {'; '.join(parts)}" if parts else ""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("probe", help="check a provider key against the real API (and record a job)")
    parser.add_argument("--provider", required=True, choices=PROVIDER_NAMES)
    parser.add_argument("--key-env", help="environment variable holding the key (default KLING_RELAY_<PROVIDER>_KEY)")
    parser.add_argument("--base-url", help="the API's base URL (default: the provider's own; set it for white labels)")
    parser.add_argument("--submit", action="store_true", help="also run one 5 s job to its end (charged)")
    parser.add_argument("--record", metavar="DIR", help="store every request and answer, sanitised, as fixtures")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the job (default 900)")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between status checks (default 15)")
    parser.set_defaults(run=run)
