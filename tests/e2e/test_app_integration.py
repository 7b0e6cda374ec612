"""What an app does against the local stack: signed webhooks, cancel, idempotent retries, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from standardwebhooks import Webhook

from cli.main import main as cli_main
from tests.e2e.conftest import E2E
from tests.support.api_client import ApiError
from tests.support.http_server import Reply, serve

pytestmark = pytest.mark.e2e


def test_the_apps_webhook_gets_every_event_signed_with_its_tenants_secret(system: E2E) -> None:
    with serve(lambda _: Reply(204)) as receiver:
        job = system.api.submit({"provider": "kie", "prompt": "webhook", "webhook_url": f"{receiver.url}/hooks"})
        system.wait_all([job["id"]])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(receiver.received) < 3:
            time.sleep(0.2)
    verifier = Webhook(system.key.webhook_secret)
    types = []
    for request in receiver.received:
        assert request.path == "/hooks"
        event = verifier.verify(request.body, request.headers)
        assert request.headers["webhook-id"] == event["id"]
        assert event["data"]["id"] == job["id"]
        types.append(event["type"])
    assert types == ["job.queued", "job.archiving", "job.succeeded"]


def test_cancel_stops_tracking_and_a_second_cancel_is_a_conflict(system: E2E) -> None:
    assert system.stack.emulator is not None
    system.stack.emulator.set_job_seconds(30, provider="pixwith")
    try:
        job = system.api.submit({"provider": "pixwith", "prompt": "cancel me"})
        # Once Pixwith holds it, its workflow is waiting to poll: local Step Functions (moto) stops an execution
        # in a Wait, not one inside a task (a job canceled while waiting for a provider: tests/reliability).
        deadline = time.monotonic() + 30
        while system.api.get(job["id"])["status"] == "submitting" and time.monotonic() < deadline:
            time.sleep(0.1)
        canceled = system.api.cancel(job["id"])
        assert canceled["status"] == "canceled"
        with pytest.raises(ApiError) as conflict:
            system.api.cancel(job["id"])
        assert (conflict.value.status, conflict.value.code) == (409, "job_terminal")
        sfn = system.stack.aws.client("stepfunctions")
        execution = f"{system.stack.outputs['StateMachineArn'].replace(':stateMachine:', ':execution:')}:{job['id']}"
        assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    finally:
        system.stack.emulator.set_job_seconds(2.0, provider="pixwith")


def test_an_idempotent_retry_returns_the_same_job_and_a_changed_body_conflicts(system: E2E) -> None:
    first = system.api.submit({"provider": "apimart", "prompt": "once"}, idempotency_key="order-42")
    again = system.api.submit({"provider": "apimart", "prompt": "once"}, idempotency_key="order-42")
    assert again["id"] == first["id"]
    with pytest.raises(ApiError) as conflict:
        system.api.submit({"provider": "apimart", "prompt": "twice"}, idempotency_key="order-42")
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")
    assert system.stack.emulator is not None
    assert sum(1 for task in system.stack.emulator.tasks("apimart") if task.prompt == "once") == 1


def test_keys_are_required_tenants_are_isolated_and_revocation_holds(
    system: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = system.stack.create_api_key("e2e-other")
    job = system.api.submit({"provider": "vidgo", "prompt": "mine"})
    with pytest.raises(ApiError) as hidden:
        system.client(other).get(job["id"])
    assert hidden.value.status == 404
    assert job["id"] not in [item["id"] for item in system.client(other).list()["items"]]
    unauthenticated = httpx.get(f"{system.stack.base_url}/jobs", timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "unauthorized"
    assert system.stack.api is not None
    monkeypatch.setattr("sys.stdin", io.StringIO(other.api_key + "\n"))  # never on the command line
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["keys", "revoke", "--key-file", "-", "--stack", "KlingRelay"]) == 0
    system.stack.api.clear_authorizer_cache()
    with pytest.raises(ApiError) as revoked:
        system.client(other).list()
    assert revoked.value.status == 401


def test_cli_keys_and_submit_work_against_the_local_stack(system: E2E, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["keys", "create", "--tenant", "e2e-cli", "--json"]) == 0
    created = json.loads(out.getvalue())
    assert set(created) >= {"api_key", "webhook_secret", "tenant"}
    monkeypatch.setenv("KLING_RELAY_URL", system.stack.base_url)
    monkeypatch.setenv("KLING_RELAY_API_KEY", created["api_key"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(
            ["submit", "--prompt", "from the cli", "--provider", "kie", "--sound", "--wait", "--timeout", "60"]
        )
    assert code == 0, f"{out.getvalue()}\n{system.diagnostics()}"
    text = out.getvalue()
    assert "succeeded" in text
    assert "sha256" in text


def test_serve_prints_one_json_line_and_serves_until_interrupted() -> None:
    env = {**os.environ}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert set(ready) >= {"base_url", "api_key", "tenant", "aws_endpoint_url", "emulator_url", "console_url"}
        answer = httpx.get(
            f"{ready['base_url']}/jobs", headers={"Authorization": f"Bearer {ready['api_key']}"}, timeout=10
        )
        assert answer.status_code == 200
        assert answer.json()["items"] == []
        # The console is served, and finds the API through its config file, never through its URL.
        assert "?" not in ready["console_url"]
        page = httpx.get(ready["console_url"], timeout=10)
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        config = httpx.get(f"{ready['console_url']}config.json", timeout=10).json()
        assert config == {"api_base_url": ready["base_url"] + "/"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
