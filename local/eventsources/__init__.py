"""The template's event-source mappings, driven into the real handlers as Lambda would drive them.

moto keeps DynamoDB streams and SQS queues but runs no event-source mapping without Docker. Each
`AWS::Lambda::EventSourceMapping` of the synthesized template becomes a driver with its own consumer thread:
`StreamMapping` for a table stream, `QueueMapping` for a queue, with the mapping's filters, batching,
partial batch responses, retries, bisection and on-failure destination.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from local.eventsources.config import MappingConfigError, SourceKind, parse_mapping
from local.eventsources.driver import DEFAULT_TIMING, Clients, MappingCrashedError, MappingDriver, Timing
from local.eventsources.filters import FilterSet, PatternError, compile_pattern, matches
from local.eventsources.invoke import Functions, MappingStats
from local.eventsources.queues import QueueMapping
from local.eventsources.streams import StreamMapping
from local.template import Template

__all__ = [
    "EventSources",
    "FilterSet",
    "MappingConfigError",
    "MappingCrashedError",
    "MappingDriver",
    "MappingStats",
    "PatternError",
    "QueueMapping",
    "StreamMapping",
    "Timing",
    "compile_pattern",
    "matches",
]

MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"
STOP_TIMEOUT_SECONDS = 2.0


def build_mapping(
    name: str, properties: dict[str, Any], functions: Functions, clients: Clients, timing: Timing = DEFAULT_TIMING
) -> MappingDriver:
    """A driver for one mapping, from its resolved template properties."""
    parsed = parse_mapping(name, properties)
    try:
        host = functions.resolve(parsed.function_name)
    except KeyError as exc:
        raise MappingConfigError(f"event source mapping {name}: no function {parsed.function_name!r}") from exc
    if parsed.source_kind is SourceKind.DYNAMODB_STREAM:
        return StreamMapping(name, parsed, host, clients, timing)
    return QueueMapping(name, parsed, host, clients, timing)


class EventSources:
    def __init__(self, mappings: list[MappingDriver]) -> None:
        self.mappings = mappings

    @classmethod
    def from_template(
        cls,
        template: Template,
        resolve: Callable[[Any], Any],
        functions: Functions,
        clients: Clients,
        timing: Timing = DEFAULT_TIMING,
    ) -> EventSources:
        """Every mapping in the template; `resolve` turns intrinsics into deployed values (table stream, queues)."""
        mappings = [
            build_mapping(name, resolve(resource.get("Properties", {})), functions, clients, timing)
            for name, resource in sorted(template.of_type(MAPPING_TYPE).items())
        ]
        return cls(mappings)

    def mapping(self, name_contains: str) -> MappingDriver:
        found = [mapping for mapping in self.mappings if name_contains in mapping.name]
        if len(found) != 1:
            raise LookupError(f"expected one mapping matching {name_contains!r}, found {len(found)}")
        return found[0]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> EventSources:
        for mapping in self.mappings:
            mapping.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Stop every consumer; False if one is still inside a handler after `timeout` seconds."""
        for mapping in self.mappings:
            mapping.request_stop()
        deadline = time.monotonic() + timeout
        stopped = [mapping.join(max(0.0, deadline - time.monotonic())) for mapping in self.mappings]
        return all(stopped)

    def __enter__(self) -> EventSources:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- observing -------------------------------------------------------------------------------

    def _activity(self) -> int:
        return sum(mapping.activity for mapping in self.mappings)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every mapping has nothing in hand and has found nothing new, with no mapping having
        moved meanwhile (a handler's write can feed another mapping). False if that takes over `timeout`.

        Messages waiting out a visibility timeout are the queue's, not in hand; a crashed mapping raises.
        """
        deadline = time.monotonic() + timeout
        while True:
            mark = time.monotonic()
            activity = self._activity()
            while not all(mapping.quiet_since(mark) for mapping in self.mappings):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)
            if self._activity() == activity:
                return True

    def summary(self) -> dict[str, dict[str, int]]:
        return {mapping.name: mapping.stats.summary() for mapping in self.mappings}
