"""An HTTP endpoint on 127.0.0.1 that answers a byte at a time: the slow webhook receiver of the fairness tests.

Each connection gets its request read whole, then `answer` sent one byte per `interval` seconds. The server
notes when each request arrived, when a client hung up before the answer was out (the deliverer cutting it
off), and which answers went out whole (no deadline stopped them).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass
class Trickle:
    url: str
    interval: float
    answer: bytes
    arrived: list[float] = field(default_factory=list)  # monotonic times requests were read
    cut_off: list[float] = field(default_factory=list)  # monotonic times clients hung up mid-answer
    finished: list[float] = field(default_factory=list)  # monotonic times whole answers went out
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seconds_per_answer(self) -> float:
        return self.interval * len(self.answer)

    def note(self, into: list[float]) -> None:
        with self._lock:
            into.append(time.monotonic())


def _read_request(connection: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


@contextmanager
def trickling_server(interval: float, answer: bytes = OK) -> Iterator[Trickle]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    trickle = Trickle(url=f"http://127.0.0.1:{listener.getsockname()[1]}", interval=interval, answer=answer)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(30)
            if not _read_request(connection):
                return
            trickle.note(trickle.arrived)
            for index in range(len(answer)):
                if stop.wait(interval):
                    return
                try:
                    connection.sendall(answer[index : index + 1])
                except OSError:
                    trickle.note(trickle.cut_off)
                    return
            trickle.note(trickle.finished)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=serve, args=(connection,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield trickle
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for worker in workers:
            worker.join(timeout=5)
        listener.close()
