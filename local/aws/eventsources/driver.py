"""What every mapping driver shares: its consumer thread, stopping, counters and the idleness signal."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.aws.eventsources.config import MappingProperties
from local.aws.eventsources.invoke import Invocable, MappingStats

Clients = Callable[[str], Any]
log = logging.getLogger(__name__)

POLLER_ERROR_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class Timing:
    """How often shards and queues are polled, and the first pause before a failed stream batch is retried
    (doubling per retry, capped). Lambda polls shards about four times a second and retries soon after."""

    poll_interval: float = 0.1
    retry_backoff: float = 0.1


DEFAULT_TIMING = Timing()


def function_arn(function_name: str, source_arn: str) -> str:
    """The ARN of a function named by name or ARN, in the source's region and account."""
    if function_name.startswith("arn:"):
        return function_name
    _, partition, _, region, account, _ = source_arn.split(":", 5)
    return f"arn:{partition}:lambda:{region}:{account}:function:{function_name}"


class MappingCrashedError(RuntimeError):
    """A mapping's consumer thread stopped on an error it cannot recover from."""


class MappingDriver(ABC):
    def __init__(
        self,
        name: str,
        properties: MappingProperties,
        host: Invocable,
        clients: Clients,
        timing: Timing = DEFAULT_TIMING,
    ) -> None:
        self.name = name
        self.properties = properties
        self.host = host
        self.clients = clients
        self.function_arn = function_arn(properties.function_name, properties.event_source_arn)
        self.filters = properties.filters
        self.poll_interval = timing.poll_interval
        self.retry_backoff = timing.retry_backoff
        self.stats = MappingStats()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Monotonic start time of the poll that last found nothing while nothing was left to process;
        # None while records or messages are in hand. Written by the consumer thread only.
        self._quiet_as_of: float | None = None
        self.last_activity = 0.0  # monotonic time records were last read or an invocation last ended

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.properties.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"esm-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for the consumer thread; False if it is still running (a handler is still at work)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.prepare()
            while not self._stop.is_set():
                try:
                    progressed = self.step()
                except (ClientError, BotoCoreError) as exc:
                    # The poller's own AWS call failed: Lambda's poller retries, and so does this one.
                    self.stats.poller_errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    self._quiet_as_of = None
                    log.warning("event source mapping %s: %s", self.name, self.stats.last_error)
                    self._stop.wait(POLLER_ERROR_PAUSE_SECONDS)
                    continue
                if not progressed:
                    self._stop.wait(self.idle_wait())
        except Exception as exc:
            # Kept for wait_idle() and stop() to report: a mapping that died must not look idle.
            self.error = exc
            log.exception("event source mapping %s stopped", self.name)
        finally:
            self.close()

    # -- idleness --------------------------------------------------------------------------------

    def quiet_since(self, mark: float) -> bool:
        """Nothing in hand, and a poll that started at or after `mark` found nothing new."""
        if not self.properties.enabled:
            return True
        if self.error is not None:
            raise MappingCrashedError(f"event source mapping {self.name} stopped: {self.error!r}") from self.error
        quiet = self._quiet_as_of
        return quiet is not None and quiet >= mark

    def moved(self) -> None:
        """Note that records were read or an invocation ended (after whatever the handler wrote)."""
        self._quiet_as_of = None
        self.last_activity = self.now()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    # -- the consumer --------------------------------------------------------------------------

    @abstractmethod
    def prepare(self) -> None:
        """Look up what the poller needs (queue URL, shards) once, on the consumer thread."""

    def close(self) -> None:  # noqa: B027 (a hook: most drivers hold nothing to let go of)
        """Let go of what the consumer held (on its thread, once it stops)."""

    @abstractmethod
    def step(self) -> bool:
        """One round of polling and invoking; True if it did something, so the next round starts at once."""

    def idle_wait(self) -> float:
        return self.poll_interval / 2
