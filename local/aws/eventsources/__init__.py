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

from local.aws.eventsources.config import MappingConfigError, SourceKind, parse_mapping
from local.aws.eventsources.driver import DEFAULT_TIMING, Clients, MappingCrashedError, MappingDriver, Timing
from local.aws.eventsources.filters import FilterSet, PatternError, compile_pattern, matches
from local.aws.eventsources.invoke import Functions, MappingStats
from local.aws.eventsources.queues import QueueMapping
from local.aws.eventsources.streams import StreamMapping
from local.aws.template import Template

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
    "build_mapping",
    "compile_pattern",
    "matches",
]

MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"
STOP_TIMEOUT_SECONDS = 2.0


def build_mapping(
    name: str, properties: dict[str, Any], functions: Functions, clients: Clients, timing: Timing = DEFAULT_TIMING
) -> MappingDriver:
    """A driver for one deployed mapping, from its resolved template properties (the local deployer leaves
    mappings out of moto, so the driver is the source's only consumer)."""
    parsed = parse_mapping(name, properties)
    try:
        host = functions.resolve(parsed.function_name)
    except KeyError as exc:
        raise MappingConfigError(f"event source mapping {name}: no function {parsed.function_name!r}") from exc
    driver: MappingDriver
    if parsed.source_kind is SourceKind.DYNAMODB_STREAM:
        driver = StreamMapping(name, parsed, host, clients, timing)
    else:
        driver = QueueMapping(name, parsed, host, clients, timing)
    return driver


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

    def _last_activity(self, since: float) -> float:
        return max([since, *(mapping.last_activity for mapping in self.mappings)])

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every mapping has nothing in hand and has polled and found nothing since the last time
        any of them read or invoked (a handler's write can feed another mapping) and since this call began.
        False if that takes more than `timeout` seconds.

        Messages waiting out a visibility timeout belong to the queue, not to a mapping; a crashed mapping raises.
        """
        began = time.monotonic()
        deadline = began + timeout
        while True:
            threshold = self._last_activity(began)
            if all(mapping.quiet_since(threshold) for mapping in self.mappings):
                if self._last_activity(began) == threshold:
                    return True
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def summary(self) -> dict[str, dict[str, int]]:
        return {mapping.name: mapping.stats.summary() for mapping in self.mappings}
