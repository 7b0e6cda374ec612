"""HTTP plumbing: a threaded stdlib server, request routing, JSON replies and streamed downloads.

Routes: `/_control/...` (control API), `/assets/<name>` (sample frames), `/cdn/...` (result files), and
`/<provider>/...` (that provider's API).
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from local.provider_emulator.control import PREFIX as CONTROL_PREFIX
from local.provider_emulator.control import ControlApi
from local.provider_emulator.downloads import CdnError, DownloadPlan, plan_download
from local.provider_emulator.engine import Engine
from local.provider_emulator.media import ASSET_NAMES, CHUNK_BYTES, asset
from local.provider_emulator.providers.base import Incoming, Reply
from local.provider_emulator.routes import handle_provider
from shared.models.common import PROVIDER_NAMES

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024
_REASONS = {455: "Service Unavailable", 505: "Function Disabled"}


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 resets connections in a burst; a real endpoint queues them.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], engine: Engine, control: ControlApi) -> None:
        self.engine = engine
        self.control = control
        super().__init__(address, RequestHandler)


class BadRequestError(Exception):
    pass


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kling-relay-emulator"
    # Headers and body go out in separate writes; without TCP_NODELAY each keep-alive answer would wait
    # for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -- dispatch --------------------------------------------------------------------------------

    def _handle(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("client went away during %s %s: %s", self.command, self.path, exc)
            self.close_connection = True
        except BadRequestError as exc:
            self._send(Reply(400, {"error": str(exc)}))
            self.close_connection = True
        except Exception:
            log.exception("emulator failed on %s %s", self.command, self.path)
            self._send(Reply(500, {"error": "emulator internal error; see its log"}))
            self.close_connection = True

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self._read_body()
        engine = self.server.engine

        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._send(self.server.control.handle(self.command, path, query, body))
            return
        if path.startswith("/cdn/") and self.command in ("GET", "HEAD"):
            outcome = plan_download(engine, path, self.headers.get("Range"), head=self.command == "HEAD")
            if isinstance(outcome, CdnError):
                self._send_bytes(outcome.status, outcome.body, {"Content-Type": "application/xml", **outcome.headers})
            else:
                self._stream(outcome)
            return
        if path.startswith("/assets/") and self.command in ("GET", "HEAD"):
            name = path.removeprefix("/assets/")
            if name in ASSET_NAMES:
                data, content_type = asset(name)
                self._send_bytes(200, data, {"Content-Type": content_type})
            else:
                self._send(Reply(404, {"error": f"no asset {name!r}; known: {', '.join(ASSET_NAMES)}"}))
            return
        mount, _, rest = path.lstrip("/").partition("/")
        for name in PROVIDER_NAMES:
            if mount == name:
                incoming = Incoming(self.command, "/" + rest, query, dict(self.headers.items()), body)
                self._send(handle_provider(engine, engine.apis[name], incoming, "/" + mount))
                return
        self._send(Reply(404, {"error": f"no route {self.command} {path}"}))

    # -- reading ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if not raw_length:
            return b""
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise BadRequestError(f"invalid Content-Length {raw_length!r}") from exc
        if not 0 <= length <= MAX_REQUEST_BYTES:
            raise BadRequestError(f"request body of {length} bytes is over the {MAX_REQUEST_BYTES} byte limit")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise BadRequestError("malformed chunked request body") from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields are not used
                return b"".join(pieces)
            total += size
            if total > MAX_REQUEST_BYTES:
                raise BadRequestError(f"request body is over the {MAX_REQUEST_BYTES} byte limit")
            pieces.append(self.rfile.read(size))
            self.rfile.readline(8)

    # -- writing ---------------------------------------------------------------------------------

    def _start(self, status: int, headers: dict[str, str]) -> None:
        reason = _REASONS.get(status)
        if reason is None:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Error"
        self.send_response(status, reason)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self._start(status, {**headers, "Content-Length": str(len(data))})
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send(self, reply: Reply) -> None:
        self._send_bytes(reply.status, reply.encoded(), {"Content-Type": "application/json", **reply.headers})

    def _stream(self, plan: DownloadPlan) -> None:
        self._start(plan.status, plan.headers)
        if self.command == "HEAD":
            return
        length = plan.stop - plan.start
        limit = length if plan.truncate_after is None else min(length, plan.truncate_after)
        rate = plan.bytes_per_second
        piece_size = CHUNK_BYTES if rate is None else max(1, min(CHUNK_BYTES, rate // 20))
        stopping = self.server.engine.stopping
        started = time.monotonic()
        sent = 0
        for chunk in plan.file.chunks(plan.start, plan.start + limit):
            for offset in range(0, len(chunk), piece_size):
                piece = chunk[offset : offset + piece_size]
                sent += len(piece)
                if rate is not None:
                    # hold each piece back until the rate allows all bytes up to its end
                    lag = started + sent / rate - time.monotonic()
                    if lag > 0 and stopping.wait(lag):
                        self.close_connection = True
                        return
                self.wfile.write(piece)
        if limit < length:
            # The declared Content-Length is not met: closing now is what a broken CDN transfer looks like.
            self.close_connection = True
