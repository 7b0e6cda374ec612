"""The console's CloudFront distribution, served locally: the console's files with the template's response
headers policy (its CSP, HSTS, frame, content-type and referrer headers, and custom headers), the
distribution's default root object, and `config.json` naming the local API.

The deployed distribution reads the files the stack's deployment copied from `console/` into the bucket;
here they are read from that folder itself. Values the template resolves to deployed hosts (the API's
execute-api origin, the video bucket's hosts, the distribution's own domain) are swapped for their local
counterparts through `aliases`, so the CSP the browser enforces is the deployed one, naming local origins.
Only GET and HEAD are answered, as the distribution allows.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from local.aws.template import Template

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CACHE_CONTROL = "no-cache"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def policy_headers(
    template: Template, resolve: Callable[[Any], Any], aliases: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The headers the distribution's response headers policy adds, resolved, with `aliases` applied."""
    _, distribution = template.one("AWS::CloudFront::Distribution")
    policy_ref = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"].get("ResponseHeadersPolicyId")
    if not isinstance(policy_ref, dict) or "Ref" not in policy_ref:
        return []
    config = template.resources[policy_ref["Ref"]]["Properties"]["ResponseHeadersPolicyConfig"]

    def value(raw: Any) -> str:
        text = str(resolve(raw))
        for deployed, local in aliases.items():
            text = text.replace(deployed, local)
        return text

    security = config.get("SecurityHeadersConfig", {})
    headers: list[tuple[str, str]] = []
    if "ContentSecurityPolicy" in security:
        headers.append(("Content-Security-Policy", value(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])))
    if "StrictTransportSecurity" in security:
        hsts = security["StrictTransportSecurity"]
        parts = [f"max-age={hsts['AccessControlMaxAgeSec']}"]
        parts += ["includeSubDomains"] if hsts.get("IncludeSubdomains") else []
        parts += ["preload"] if hsts.get("Preload") else []
        headers.append(("Strict-Transport-Security", "; ".join(parts)))
    if "FrameOptions" in security:
        headers.append(("X-Frame-Options", security["FrameOptions"]["FrameOption"]))
    if "ContentTypeOptions" in security:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if "ReferrerPolicy" in security:
        headers.append(("Referrer-Policy", security["ReferrerPolicy"]["ReferrerPolicy"]))
    for item in config.get("CustomHeadersConfig", {}).get("Items", []):
        headers.append((str(item["Header"]), value(item["Value"])))
    return headers


def default_root_object(template: Template) -> str:
    _, distribution = template.one("AWS::CloudFront::Distribution")
    return str(distribution["Properties"]["DistributionConfig"].get("DefaultRootObject", "index.html"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 resets connections in a burst; a real endpoint queues them.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], site: ConsoleDistribution) -> None:
        self.site = site
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _refuse(self) -> None:
        self._write(403, "text/plain", b"This distribution answers GET and HEAD only.\n")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        found = self.server.site.file(unquote(urlsplit(self.path).path))
        if found is None:
            self._write(404, "text/plain", b"Not Found\n")
            return
        content_type, body = found
        self._write(200, content_type, body)

    def _write(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", CACHE_CONTROL)
        self.send_header("Date", formatdate(usegmt=True))
        for name, value in self.server.site.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class ConsoleDistribution:
    """Serves `folder` on `http://<host>:<port>/` as the template's distribution serves the deployed copy."""

    def __init__(self, template: Template, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.template = template
        self.folder = folder.resolve()
        self.root_object = default_root_object(template)
        self.headers: list[tuple[str, str]] = []
        self.api_base_url = ""
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the console server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def start(self) -> str:
        """Binds the port (so the origin is known); `configure` must follow before the console is usable."""
        if self._server is not None:
            raise RuntimeError("the console server is already started")
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="console", daemon=True)
        self._thread.start()
        return self.url

    def configure(self, *, api_base_url: str, headers: list[tuple[str, str]]) -> None:
        self.api_base_url = api_base_url
        self.headers = headers

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def file(self, path: str) -> tuple[str, bytes] | None:
        """(content type, bytes) for a request path, or None: nothing outside the folder, no directory listing."""
        name = path.lstrip("/") or self.root_object
        if name == CONFIG_FILE:
            body = json.dumps({"api_base_url": self.api_base_url.rstrip("/") + "/"}).encode()
            return "application/json", body
        candidate = (self.folder / name).resolve()
        if not candidate.is_relative_to(self.folder) or not candidate.is_file():
            return None
        content_type = CONTENT_TYPES.get(candidate.suffix) or mimetypes.guess_type(candidate.name)[0]
        return content_type or "application/octet-stream", candidate.read_bytes()
