"""The HTTP side: a threaded stdlib server on loopback that hands each request to the gateway."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from local.aws.apigateway.authorizers import Invocable
from local.aws.apigateway.definition import load_api
from local.aws.apigateway.gateway import MAX_BODY_BYTES, Gateway
from local.aws.apigateway.messages import HttpRequest, HttpResponse
from local.aws.moto_patches import set_usage_source
from local.aws.template import Template
from shared.digits import ascii_int

log = logging.getLogger(__name__)


class Functions(Protocol):
    """Finds a deployed function by name or ARN (`local.aws.lambdas.FunctionRegistry` is one)."""

    def resolve(self, name_or_arn: str) -> Invocable: ...


class _BadRequestError(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 resets connections in a burst; a real endpoint queues them.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)

    @property
    def domain_name(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"


def _latin1(text: str) -> str:
    """Header text as the bytes go out: UTF-8, since http.server writes headers as Latin-1."""
    return text.encode("utf-8").decode("latin-1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        try:
            body, too_large = self._read_body()
        except _BadRequestError as exc:
            self.close_connection = True
            self._write(HttpResponse(400, [("Content-Type", "text/plain")], str(exc).encode()))
            return
        parts = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=parts.path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            headers=tuple((name, value) for name, value in self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            domain_name=self.server.domain_name,
            protocol=self.request_version,
        )
        try:
            response = self.server.gateway.handle(request, body_too_large=too_large)
        except Exception:
            # A fault of the adapter itself, never an answer API Gateway would give: loud in the log.
            log.exception("the local API Gateway failed on %s %s", self.command, self.path)
            response = HttpResponse(
                500, [("Content-Type", "application/json")], b'{"message": "Internal server error"}'
            )
        if too_large:
            self.close_connection = True  # the unread body is still on the socket
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up before the answer (its own timeout): nothing to answer, as at API Gateway.
            log.info("client left before the answer to %s %s", self.command, self.path)
            self.close_connection = True

    def _read_body(self) -> tuple[bytes, bool]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b"", False
        length = ascii_int(raw.strip())
        if length is None:
            raise _BadRequestError(f"invalid Content-Length {raw!r}")
        if length > MAX_BODY_BYTES:
            return b"", True
        return self.rfile.read(length), False

    def _read_chunked(self) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                length = int(line, 16)
            except ValueError as exc:
                raise _BadRequestError(f"invalid chunk size {line!r}") from exc
            if length == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(chunks), False
            size += length
            if size > MAX_BODY_BYTES:
                return b"", True
            chunks.append(self.rfile.read(length))
            self.rfile.readline(8)

    def _write(self, response: HttpResponse) -> None:
        self.send_response_only(response.status)
        for name, value in response.headers:
            self.send_header(_latin1(name), _latin1(value))
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class ApiGatewayAdapter:
    """The template's REST API, served on `http://<host>:<port>/<stage>/...`.

    `resolve` resolves the template's intrinsics against deployed values (function ARNs);
    `functions` finds the function behind an ARN and runs it. `rest_api` (a logical id) and `stage`
    choose when the template has several; `clock` (seconds) times the authorizer cache; `aliases` swaps
    deployed values in response headers for local ones (the console's origin in CORS headers); `apigateway`
    makes the API Gateway client (moto's) that usage plans and API keys are kept in.
    """

    def __init__(
        self,
        template: Template,
        resolve: Callable[[Any], Any],
        functions: Functions,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rest_api: str | None = None,
        stage: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        aliases: Mapping[str, str] | None = None,
        apigateway: Callable[[], Any] | None = None,
    ) -> None:
        self.api = load_api(template, resolve, rest_api=rest_api, stage=stage, aliases=aliases)
        self.gateway = Gateway(self.api, functions.resolve, clock, apigateway)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stage's base URL, e.g. `http://127.0.0.1:8080/v1`."""
        if self._server is None:
            raise RuntimeError("the adapter is not started")
        return f"http://{self._server.domain_name}/{self.api.stage}"

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("the adapter is already started")
        if self.api.usage_plans:
            self.gateway.usage_plans.create()
            set_usage_source(self.gateway.usage_plans.usage)
        self._server = _Server(self._address, self.gateway)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="apigateway", daemon=True)
        self._thread.start()
        log.info("serving REST API %s (%s) at %s", self.api.logical_id, self.api.api_id, self.url)
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        if self.api.usage_plans:
            set_usage_source(None)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def clear_authorizer_cache(self) -> None:
        self.gateway.authorizers.clear_cache()

    def refused_by_usage_plans(self) -> dict[str, int]:
        """Requests refused by usage plans (no or unknown key, throttle, quota), by gateway response type."""
        return dict(self.gateway.usage_plans.refused)

    def throttled(self) -> dict[tuple[str, str], int]:
        """Requests answered 429 by stage or method throttling, by (HTTP method, resource path)."""
        return dict(self.gateway.throttling.throttled)

    def __enter__(self) -> ApiGatewayAdapter:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
