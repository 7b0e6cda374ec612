"""A tiny scripted HTTP server on 127.0.0.1 for tests that need a real socket."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Script = Callable[[Received], Reply]


@dataclass
class LocalServer:
    url: str
    received: list[Received]


@contextmanager
def serve(script: Script) -> Iterator[LocalServer]:
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
            received.append(request)
            reply = script(request)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalServer(url=f"http://127.0.0.1:{server.server_address[1]}", received=received)
    finally:
        server.shutdown()
        server.server_close()
