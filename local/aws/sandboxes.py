"""A function's invocations in processes of their own, as Lambda runs concurrent invocations in separate sandboxes.

In this process a function's invocations take turns (handler modules hold per-invocation state, and Powertools'
resolver keeps the event it resolves on a class). For a function under concurrent load, the api during a burst,
that queue belongs to running everything in one process, not to the design: Lambda would start more sandboxes.
A pool keeps a few worker processes, each with the function's environment and this process's AWS endpoint,
each importing the handler once and serving one invocation at a time, the way a warm sandbox does.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

READY_SECONDS = 120.0  # a cold worker imports the handler's whole dependency tree


class SandboxError(RuntimeError):
    """The handler raised (as a function error), or its sandbox died mid-invocation."""


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection


def _quiet(log_file: str | None) -> None:
    """Function logs go where the parent sends its own functions' logs: a file, or nowhere below ERROR."""
    from shared.observability import logger

    if log_file is None:
        logger.setLevel("ERROR")
        return
    stream = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 (open for the sandbox's whole life)
    logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]


def _serve(spec: Any, environment: dict[str, str], log_file: str | None, conn: Connection) -> None:
    """A sandbox: import the handler, then answer invocations one at a time until the pipe closes."""
    from local.aws.lambdas import FunctionHost

    os.environ.update(environment)
    _quiet(log_file)
    host = FunctionHost(spec, environment)
    _ = host.handler  # the import happens now, as a sandbox's init phase, not on the first request
    conn.send(("ready", None))
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", host.invoke(event)))
        except Exception as exc:  # noqa: BLE001 (reported to the caller as Lambda reports a function error)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class SandboxPool:
    """`count` sandbox processes for one function; `invoke` waits for an idle one, as a throttled Lambda would."""

    def __init__(self, spec: Any, environment: dict[str, str], count: int, log_file: Path | None = None) -> None:
        if count < 1:
            raise ValueError("a sandbox pool needs at least one sandbox")
        self.spec = spec
        self.environment = environment
        self.count = count
        self.log_file = str(log_file) if log_file is not None else None
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def start(self) -> SandboxPool:
        starting = [self._spawn() for _ in range(self.count)]  # every sandbox imports at once
        for worker in starting:
            self._await_ready(worker)
            self._idle.put(worker)
        return self

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(self.spec, self.environment, self.log_file, theirs),
            name=f"sandbox-{self.spec.name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        if not worker.conn.poll(READY_SECONDS):
            raise SandboxError(f"a sandbox of {self.spec.name} did not start within {READY_SECONDS:.0f} s")
        kind, _ = worker.conn.recv()
        if kind != "ready":
            raise SandboxError(f"a sandbox of {self.spec.name} failed to start")

    def invoke(self, event: Any) -> Any:
        worker = self._idle.get()
        try:
            worker.conn.send(event)
            kind, value = worker.conn.recv()
        except (EOFError, OSError) as exc:
            self._replace(worker)
            raise SandboxError(f"the sandbox of {self.spec.name} died during the invocation") from exc
        self._idle.put(worker)
        if kind == "error":
            raise SandboxError(value)
        return value

    def _replace(self, dead: _Worker) -> None:
        log.warning("a sandbox of %s died; starting another", self.spec.name)
        with self._lock:
            self._workers.remove(dead)
        dead.conn.close()
        worker = self._spawn()
        self._await_ready(worker)
        self._idle.put(worker)

    def stop(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.conn.close()
        for worker in workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
