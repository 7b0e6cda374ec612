"""Sandbox processes: invocations side by side, errors reported as function errors, a dead sandbox replaced."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.aws.lambdas import DeployedFunction, FunctionHost
from local.aws.sandboxes import SandboxError, SandboxPool

SPEC = DeployedFunction(
    logical_id="ProbeFunction",
    name="relay-probe",
    handler="tests.support.sandbox_handler.lambda_handler",
    environment={"TABLE_NAME": "probe-table"},
)


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    started = SandboxPool(SPEC, dict(SPEC.environment), count=2).start()
    yield started
    started.stop()


def test_two_invocations_run_side_by_side_in_processes_of_their_own(pool: SandboxPool, tmp_path: Path) -> None:
    flag = tmp_path / "second-started"
    answers: dict[str, Any] = {}

    def first() -> None:
        answers["first"] = pool.invoke({"await": str(flag)})

    waiting = threading.Thread(target=first)
    waiting.start()
    answers["second"] = pool.invoke({"create": str(flag)})
    waiting.join()

    assert answers["first"]["saw"] is True  # it was still running when the second one created the file
    assert answers["first"]["pid"] != answers["second"]["pid"]
    assert os.getpid() not in {answers["first"]["pid"], answers["second"]["pid"]}
    assert answers["second"]["table"] == "probe-table"  # the function's environment


def test_a_handler_error_is_a_function_error_and_the_sandbox_serves_on(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError, match="ValueError: bad input"):
        pool.invoke({"fail": "bad input"})
    assert pool.invoke({})["saw"] is True


def test_a_sandbox_that_dies_is_reported_and_replaced(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError, match="died"):
        pool.invoke({"die": True})
    pids = {pool.invoke({})["pid"] for _ in range(4)}
    assert pids  # the pool still answers, from a new sandbox where the dead one was


def test_a_host_running_in_sandboxes_counts_their_invocations(pool: SandboxPool) -> None:
    host = FunctionHost(SPEC, {})
    host.run_in_sandboxes(pool)
    assert host.invoke({})["pid"] != os.getpid()
    with pytest.raises(SandboxError):
        host.invoke({"fail": "no"})
    assert (host.invocations, host.errors, host.concurrency) == (2, 1, 2)


def test_a_pool_needs_a_sandbox() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SandboxPool(SPEC, {}, count=0)
