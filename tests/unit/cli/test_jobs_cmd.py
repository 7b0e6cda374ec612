"""`kling-relay submit` and `jobs get|list|cancel` on the SDK, against a mocked API: what they send and print."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from kling_relay import KlingRelay

from cli import jobs_cmd
from cli.main import main
from shared.models.common import JobStatus
from tests.unit.sdk.conftest import VIDEO, Recorder, error_json, job_json


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> Callable[..., Recorder]:
    def install(handler: Callable[[httpx.Request], httpx.Response]) -> Recorder:
        recorder = Recorder(handler)
        transport = httpx.MockTransport(recorder)
        monkeypatch.setattr(
            jobs_cmd,
            "client",
            lambda: KlingRelay("https://relay.test/v1", "k", http_client=httpx.Client(transport=transport)),
        )
        return recorder

    return install


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_submit_sends_the_request_and_prints_the_job_as_the_api_sent_it(api, capsys) -> None:
    sent = job_json(JobStatus.SUBMITTING)
    calls = api(lambda _: httpx.Response(202, json=sent))
    code, out, _ = run(
        capsys, "submit", "--prompt", "a fox", "--provider", "kie", "--sound", "--idempotency-key", "o-1"
    )
    assert code == 0
    assert json.loads(out) == sent
    request = calls.requests[0]
    assert json.loads(request.content) == {"prompt": "a fox", "provider": "kie", "sound": True}
    assert request.headers["Idempotency-Key"] == "o-1"


def test_submit_wait_shows_progress_and_the_outputs(api, capsys) -> None:
    first = job_json(JobStatus.SUBMITTING)
    same = {"id": first["id"]}
    waiting = {"reason": "rate_limited", "provider": "kie", "next_attempt_at": "2026-01-01T00:00:05Z"}
    views = [
        job_json(JobStatus.SUBMITTING, waiting=waiting, **same),
        job_json(JobStatus.RUNNING, progress=50, **same),
        job_json(JobStatus.SUCCEEDED, video=VIDEO, progress=100, **same),
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json=first)
        return httpx.Response(200, json=views.pop(0))

    api(handle)
    code, out, _ = run(capsys, "submit", "--prompt", "a fox", "--wait")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"{first['id']}  [------------------------------]   ?%  submitting")
    assert lines[0].endswith("waiting: rate_limited until 2026-01-01T00:00:05Z")
    assert lines[1] == f"{first['id']}  [###############---------------]  50%  running   "  # status padded to 10
    output = job_json(JobStatus.SUCCEEDED, video=VIDEO)["outputs"][0]
    assert f"output 0: {len(VIDEO)} bytes  sha256 {output['sha256']}" in lines
    assert f"  {output['url']}" in lines


def test_submit_wait_exits_non_zero_with_the_jobs_error(api, capsys) -> None:
    failed = job_json(
        JobStatus.FAILED,
        error={"code": "no_provider_available", "message": "no provider took it", "provider_code": None},
    )
    api(lambda request: httpx.Response(202 if request.method == "POST" else 200, json=failed))
    code, out, _ = run(capsys, "submit", "--prompt", "a fox", "--wait")
    assert code == 1
    assert "failed: no_provider_available: no provider took it" in out


def test_jobs_list_prints_a_row_per_job_and_the_next_cursor(api, capsys) -> None:
    page = {"items": [job_json(JobStatus.SUCCEEDED), job_json(JobStatus.RUNNING)], "next_cursor": "abc"}
    calls = api(lambda _: httpx.Response(200, json=page))
    code, out, _ = run(capsys, "jobs", "list", "--status", "succeeded", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    first = page["items"][0]
    assert lines[0] == f"{first['id']}  succeeded  kie      {first['created_at']}  {first['request']['prompt'][:40]}"
    assert lines[-1] == "more: --cursor abc"
    assert dict(calls.requests[0].url.params) == {"status": "succeeded", "limit": "2"}
    code, out, _ = run(capsys, "jobs", "list", "--json")
    assert json.loads(out) == page


def test_an_api_error_is_printed_with_its_details(api, capsys) -> None:
    details = [{"field": "sound", "provider": "pixwith", "rule": "has no sound"}]
    api(lambda _: httpx.Response(422, json=error_json("unsupported_request", "sound: pixwith has no sound", details)))
    code, out, err = run(capsys, "submit", "--prompt", "a fox", "--provider", "pixwith", "--sound")
    assert code == 1
    assert out == ""
    assert err.splitlines()[0] == "error: 422 unsupported_request: sound: pixwith has no sound"
    assert json.loads(err.split("\n", 1)[1]) == details


def test_get_and_cancel_print_the_job(api, capsys) -> None:
    canceled = job_json(JobStatus.CANCELED)
    calls = api(lambda _: httpx.Response(200, json=canceled))
    assert run(capsys, "jobs", "get", canceled["id"])[:2] == (0, json.dumps(canceled, indent=2) + "\n")
    assert run(capsys, "jobs", "cancel", canceled["id"])[:2] == (0, json.dumps(canceled, indent=2) + "\n")
    assert [(r.method, r.url.path) for r in calls.requests] == [
        ("GET", f"/v1/jobs/{canceled['id']}"),
        ("POST", f"/v1/jobs/{canceled['id']}/cancel"),
    ]


def test_without_the_url_or_key_the_cli_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLING_RELAY_URL", raising=False)
    monkeypatch.setenv("KLING_RELAY_API_KEY", "k")
    with pytest.raises(SystemExit, match="set KLING_RELAY_URL"):
        main(["jobs", "get", "job_1"])
    monkeypatch.setenv("KLING_RELAY_URL", "http://relay.example.com/v1")
    with pytest.raises(SystemExit, match="unencrypted"):
        main(["jobs", "get", "job_1"])
