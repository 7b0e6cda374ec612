"""An HTTP request as received and an HTTP response as sent, independent of the server plumbing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # as sent (still percent-encoded), without the query string
    query: tuple[tuple[str, str], ...]  # URL-decoded pairs, in order
    headers: tuple[tuple[str, str], ...]  # as sent: original case, in order
    body: bytes
    source_ip: str
    domain_name: str  # host:port the adapter listens on
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The last value of a header (names are case-insensitive), as API Gateway's single-value map holds."""
        values = self.header_values(name)
        return values[-1] if values else None

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def query_values(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    @property
    def content_type(self) -> str | None:
        """The media type alone, lowercased (`application/json` from `application/json; charset=utf-8`)."""
        raw = self.header("Content-Type")
        return raw.split(";", 1)[0].strip().lower() if raw else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        found = [value for key, value in self.headers if key.lower() == wanted]
        return found[-1] if found else None
