"""Counting what the local stack's functions bill for: invocations and their duration, and every AWS call.

Install before the stack starts: every function's handler is timed (inside the host's one-at-a-time lock,
so waiting for the lock is not billed) and marks the calls it makes; a botocore handler on the default
session, which every function's clients come from, counts each AWS call made inside an invocation, and
the DynamoDB capacity units it consumes (item sizes by DynamoDB's rules). Calls made outside a function
(the stack's drivers reading the table's stream, this benchmark's own reads) are not counted: stream reads
by Lambda triggers are free, and the rest is not the system's.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.aws.lambdas import FunctionHost

_function: ContextVar[str | None] = ContextVar("bench_function", default=None)
GSI_KEY = "gsi1pk"  # an item holding it is written to the by_owner index too (projection ALL)


@dataclass
class Tally:
    """Everything counted, by function short name (api, poll, ...)."""

    invocations: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # billed, 1 ms steps
    gb_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (function, service, operation)
    wru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    rru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def copy(self) -> Tally:
        return Tally(
            Counter(self.invocations),
            defaultdict(float, self.seconds),
            defaultdict(float, self.gb_seconds),
            Counter(self.calls),
            defaultdict(float, self.wru),
            defaultdict(float, self.rru),
        )

    def minus(self, earlier: Tally) -> Tally:
        def sub(a: Mapping[str, float], b: Mapping[str, float]) -> defaultdict[str, float]:
            return defaultdict(float, {k: a.get(k, 0.0) - b.get(k, 0.0) for k in a.keys() | b.keys()})

        return Tally(
            self.invocations - earlier.invocations,
            sub(self.seconds, earlier.seconds),
            sub(self.gb_seconds, earlier.gb_seconds),
            self.calls - earlier.calls,
            sub(self.wru, earlier.wru),
            sub(self.rru, earlier.rru),
        )

    def service_calls(self, service: str, functions: set[str] | None = None) -> Counter[str]:
        out: Counter[str] = Counter()
        for (function, svc, operation), count in self.calls.items():
            if svc == service and (functions is None or function in functions):
                out[operation] += count
        return out


class Meter:
    def __init__(self) -> None:
        self.tally = Tally()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def snapshot(self) -> Tally:
        with self._lock:
            return self.tally.copy()

    # -- installation ------------------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        self._patch_handlers()
        self._register_botocore()
        try:
            yield self
        finally:
            for undo in reversed(self._undo):
                undo()
            self._undo.clear()

    def _patch_handlers(self) -> None:
        meter = self
        original = FunctionHost.handler

        def timed_handler(host: FunctionHost) -> Callable[[Any, Any], Any]:
            handler = original.fget(host)  # type: ignore[attr-defined]
            name, memory = host.spec.short_name, host.spec.memory

            def run(event: Any, context: Any) -> Any:
                token = _function.set(name)
                started = time.perf_counter()
                try:
                    return handler(event, context)
                finally:
                    billed = math.ceil((time.perf_counter() - started) * 1000) / 1000
                    _function.reset(token)
                    with meter._lock:
                        meter.tally.invocations[name] += 1
                        meter.tally.seconds[name] += billed
                        meter.tally.gb_seconds[name] += billed * memory / 1024

            return run

        FunctionHost.handler = property(timed_handler)  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(FunctionHost, "handler", original))

    def _register_botocore(self) -> None:
        events = boto3._get_default_session().events
        events.register("before-parameter-build", self._before, unique_id="bench-meter-before")
        events.register("after-call.dynamodb", self._after_dynamodb, unique_id="bench-meter-after")
        self._undo.append(lambda: events.unregister("before-parameter-build", unique_id="bench-meter-before"))
        self._undo.append(lambda: events.unregister("after-call.dynamodb", unique_id="bench-meter-after"))

    # -- botocore handlers -------------------------------------------------------------------------

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = _function.get()
        if function is None:
            return
        service = model.service_model.service_name
        operation = model.name
        wru = _write_units(operation, params) if service == "dynamodb" else 0.0
        with self._lock:
            self.tally.calls[(function, service, operation)] += 1
            if wru:
                self.tally.wru[function] += wru

    def _after_dynamodb(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        function = _function.get()
        if function is None:
            return
        rru = _read_units(model.name, parsed)
        if rru:
            with self._lock:
                self.tally.rru[function] += rru


# -- DynamoDB capacity units ---------------------------------------------------------------------------


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed attribute value."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(attribute_size({"B": b}) for b in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _put_units(item: dict[str, Any]) -> float:
    units = math.ceil(item_size(item) / 1024) or 1
    return float(units * (2 if GSI_KEY in item else 1))


def _write_units(operation: str, params: dict[str, Any]) -> float:
    """Standard writes: 1 WRU per KB of item, again for the index; transactions cost twice."""
    if operation == "PutItem":
        return _put_units(params["Item"])
    if operation in ("UpdateItem", "DeleteItem"):
        return 1.0  # not used by the functions for jobs; one unit is the floor
    if operation == "TransactWriteItems":
        total = 0.0
        for entry in params["TransactItems"]:
            if "Put" in entry:
                total += 2 * _put_units(entry["Put"]["Item"])
            else:
                total += 2.0
        return total
    if operation == "BatchWriteItem":
        return sum(
            _put_units(request["PutRequest"]["Item"]) if "PutRequest" in request else 1.0
            for requests in params["RequestItems"].values()
            for request in requests
        )
    return 0.0


def _read_units(operation: str, parsed: dict[str, Any]) -> float:
    """Strongly consistent reads: 1 RRU per 4 KB (the functions read consistently; queries are summed)."""
    if operation == "GetItem":
        return float(math.ceil(item_size(parsed.get("Item", {})) / 4096) or 1)
    if operation in ("Query", "Scan"):
        total = sum(item_size(item) for item in parsed.get("Items", []))
        return float(math.ceil(total / 4096) or 1)
    if operation == "TransactGetItems":
        return float(
            sum(2 * (math.ceil(item_size(r.get("Item", {})) / 4096) or 1) for r in parsed.get("Responses", []))
        )
    return 0.0
