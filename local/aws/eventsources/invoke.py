"""Invoking a function with a batch, and reading its answer as Lambda's event-source poller does.

The event and the answer cross a JSON boundary, as they would between Lambda and a sandbox: the handler
cannot change the driver's records, and an answer that is not JSON is a function error.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Invocable(Protocol):
    def invoke(self, event: Any) -> Any: ...


class Functions(Protocol):
    """What a mapping needs from the function registry: the host behind a `FunctionName`."""

    def resolve(self, name_or_arn: str) -> Invocable: ...


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # the function reported some items as failed
    FAILED = "failed"  # the whole batch failed: an error, or an answer Lambda reads as a complete failure


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    failed_items: frozenset[str] = frozenset()
    function_error: str | None = None  # "Unhandled" when the handler raised, as Lambda's responseContext says
    reason: str = ""


@dataclass
class MappingStats:
    """What one mapping did; each counter is written only by the mapping's own thread."""

    received: int = 0  # records read from the stream, or messages received from the queue
    filtered: int = 0  # dropped because no filter pattern matched (a queue deletes them)
    batches: int = 0  # invocations
    records: int = 0  # records or messages the function finished with successfully
    failures: int = 0  # invocations that failed in whole or in part
    dead_lettered: int = 0  # records sent to the on-failure destination, or messages left for the queue's DLQ
    discarded: int = 0  # records given up on with no destination to send them to
    poller_errors: int = 0  # the poller's own AWS calls that failed (retried on the next round)
    last_error: str | None = None

    def summary(self) -> dict[str, int]:
        return {
            "received": self.received,
            "filtered": self.filtered,
            "batches": self.batches,
            "records": self.records,
            "failures": self.failures,
            "dead_lettered": self.dead_lettered,
            "discarded": self.discarded,
            "poller_errors": self.poller_errors,
        }


def invoke_batch(host: Invocable, records: list[dict[str, Any]], item_ids: Collection[str], report: bool) -> Outcome:
    """Invoke with `{"Records": records}`; `item_ids` are the identifiers a partial answer may name."""
    event = json.loads(json.dumps({"Records": records}))
    try:
        answer = host.invoke(event)
    except Exception as exc:  # noqa: BLE001  (any exception from the handler is a function error, as in Lambda)
        log.info("function error: %s", "".join(traceback.format_exception_only(exc)).strip())
        return Outcome(Verdict.FAILED, function_error="Unhandled", reason=f"{type(exc).__name__}: {exc}")
    try:
        answer = json.loads(json.dumps(answer))
    except (TypeError, ValueError) as exc:
        return Outcome(Verdict.FAILED, function_error="Unhandled", reason=f"answer is not JSON: {exc}")
    return read_answer(answer, item_ids) if report else Outcome(Verdict.SUCCEEDED)


def read_answer(answer: Any, item_ids: Collection[str]) -> Outcome:
    """A `ReportBatchItemFailures` answer: none or an empty list is success; anything malformed fails it all."""
    if answer is None:
        return Outcome(Verdict.SUCCEEDED)
    if not isinstance(answer, dict):
        return Outcome(Verdict.FAILED, reason=f"answer is a {type(answer).__name__}, not an object")
    failures = answer.get("batchItemFailures")
    if not failures:
        return Outcome(Verdict.SUCCEEDED)
    if not isinstance(failures, list):
        return Outcome(Verdict.FAILED, reason="batchItemFailures is not a list")
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return Outcome(Verdict.FAILED, reason=f"batch item failure without an itemIdentifier: {item!r}")
        if identifier not in item_ids:
            return Outcome(Verdict.FAILED, reason=f"itemIdentifier {identifier!r} is not in the batch")
        failed.add(identifier)
    return Outcome(Verdict.PARTIAL, failed_items=frozenset(failed), reason=f"{len(failed)} item(s) reported failed")
