"""A tenant flooding the API from a process of its own, as an abuser's machine would: its clients do not share
the relay's interpreter, so what the other tenants see measures the relay, not the flood's own HTTP clients."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from tests.support.api_client import ApiError, RelayClient

START_SECONDS = 60.0


def _flood(base_url: str, api_key: str, body: dict[str, Any], threads: int, pause: float, stop: Any, out: Any) -> None:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def one() -> None:
        client = RelayClient(base_url, api_key)
        try:
            while not stop.is_set():
                try:
                    client.submit(body)
                    code = "accepted"
                except ApiError as error:
                    code = error.code
                with lock:
                    outcomes[code] += 1
                stop.wait(pause)
        finally:
            client.http.close()

    workers = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    out.put("started")
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(dict(outcomes))


class Flood:
    """`threads` clients submitting `body` as fast as `pause` lets each, from the moment the block opens until it
    closes; `outcomes` counts the answers by error code (`accepted` for a 202)."""

    def __init__(self, base_url: str, api_key: str, body: dict[str, Any], *, threads: int, pause: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process: BaseProcess = context.Process(
            target=_flood, args=(base_url, api_key, body, threads, pause, self._stop, self._out), daemon=True
        )
        self.outcomes: dict[str, int] = {}

    def __enter__(self) -> Flood:
        self._process.start()
        if self._out.get(timeout=START_SECONDS) != "started":
            raise RuntimeError("the flood did not start")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        try:
            self.outcomes = self._out.get(timeout=START_SECONDS)
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
