"""Tracing: AWS calls patched at import, HTTP calls from a function's first HTTP client, nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared import observability
from shared.runtime import Runtime
from shared.settings import Settings


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(observability.tracer, "patch", lambda modules: calls.append(tuple(modules)))
    return calls


def test_the_first_provider_client_turns_on_http_tracing(patched: list[tuple[str, ...]]) -> None:
    rt = Runtime(Settings())
    assert patched == []
    rt.provider_http.close()
    assert patched == [("httpx",)]


def test_an_outbound_client_turns_on_http_tracing(patched: list[tuple[str, ...]]) -> None:
    Runtime(Settings()).outbound_http(timeout=1.0, follow_redirects=False).close()
    assert patched == [("httpx",)]


@pytest.mark.parametrize("module", ["functions.notify.handler", "functions.authorizer.handler"])
def test_functions_that_make_no_http_calls_do_not_import_an_http_client(module: str) -> None:
    probe = f"import sys, {module}; print('httpx' in sys.modules)"
    env = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "false", "PATH": ""}
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert answer.stdout.strip() == "False"
