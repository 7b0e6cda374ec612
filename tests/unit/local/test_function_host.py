"""The local Lambda host: one invocation at a time unless allowed more, and a context whose time runs out."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.lambdas import DeployedFunction, FunctionHost, LambdaContext

MODULE = "kling_relay_test_handler_module"


@pytest.fixture
def handler_module() -> Iterator[types.SimpleNamespace]:
    """A handler module the host imports: it records how many invocations overlap."""
    state = types.SimpleNamespace(running=0, most=0, lock=threading.Lock(), release=threading.Event())

    def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
        with state.lock:
            state.running += 1
            state.most = max(state.most, state.running)
        state.release.wait(5)
        with state.lock:
            state.running -= 1
        return {"remaining_ms": context.get_remaining_time_in_millis()}

    module = types.ModuleType(MODULE)
    module.lambda_handler = lambda_handler  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    yield state
    del sys.modules[MODULE]


def host(concurrency: int = 1) -> FunctionHost:
    spec = DeployedFunction("Fn", "kling-relay-fn", f"{MODULE}.lambda_handler", {}, timeout=30)
    made = FunctionHost(spec, {})
    if concurrency > 1:
        made.allow_concurrency(concurrency)
    return made


def overlap(made: FunctionHost, state: types.SimpleNamespace, calls: int) -> int:
    threads = [threading.Thread(target=made.invoke, args=({},)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    state.release.set()
    for thread in threads:
        thread.join(10)
    return int(state.most)


def test_invocations_run_one_at_a_time_by_default(handler_module: types.SimpleNamespace) -> None:
    assert overlap(host(), handler_module, 3) == 1


def test_a_host_allowed_more_runs_that_many_at_once(handler_module: types.SimpleNamespace) -> None:
    made = host(concurrency=2)
    assert overlap(made, handler_module, 3) == 2
    assert made.invocations == 3


def test_concurrency_is_set_before_the_first_invocation(handler_module: types.SimpleNamespace) -> None:
    made = host()
    handler_module.release.set()
    made.invoke({})
    with pytest.raises(RuntimeError, match="set its concurrency before"):
        made.allow_concurrency(2)


def test_the_contexts_remaining_time_counts_down_from_the_timeout() -> None:
    spec = DeployedFunction("Fn", "kling-relay-fn", f"{MODULE}.lambda_handler", {}, timeout=30)
    context = LambdaContext(spec)
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    assert 29_000 < first <= 30_000
    assert context.get_remaining_time_in_millis() < first


def test_functions_built_on_an_event_resolver_take_turns(handler_module: types.SimpleNamespace) -> None:
    """Powertools keeps the event being resolved on a class: two such functions in one process must not overlap
    (the api function would read the callback function's event)."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    sys.modules[MODULE].app = APIGatewayRestResolver()  # type: ignore[attr-defined]
    first, second = host(), host()
    threads = [threading.Thread(target=made.invoke, args=({},)) for made in (first, second)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    handler_module.release.set()
    for thread in threads:
        thread.join(10)
    assert handler_module.most == 1


def test_other_functions_run_side_by_side(handler_module: types.SimpleNamespace) -> None:
    first, second = host(), host()
    threads = [threading.Thread(target=made.invoke, args=({},)) for made in (first, second)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    handler_module.release.set()
    for thread in threads:
        thread.join(10)
    assert handler_module.most == 2
