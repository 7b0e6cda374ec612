"""Outbound URL safety: https to public addresses only (local mode also allows its own loopback).

Checked twice: when a URL is accepted (scheme, host, resolved addresses) and again at connect time
by `guarded_http_client`, whose network backend resolves, checks and connects to the checked
address itself, so DNS rebinding and redirects cannot reach a private address.

The same backend can hold a client to a total deadline: httpx's timeouts bound each connect, read and
write, so a server sending a byte every few seconds keeps a request open for ever; with a deadline every
socket operation is given only what is left of it (connect, TLS handshake, headers and body together).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from shared.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv4-mapped, 6to4-less NAT64 or compatible IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(address: str, *, allow_loopback: bool) -> str | None:
    """Why we refuse to connect to `address`, or None when it is a public address."""
    try:
        ip = _embedded_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return "not an IP address"
    if ip.is_unspecified:
        return "non-public address"
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if ip.is_link_local:
        return "link-local or cloud metadata address"
    if ip.is_private:
        return "private address"
    if ip.is_multicast or ip.is_reserved or not ip.is_global:
        return "non-public address"
    return None


def _legacy_ipv4(host: str) -> str:
    """Decimal, hex and octal IPv4 spellings (2130706433, 0x7f.1, 0177.0.0.1) as dotted quads."""
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return host
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return host


class UrlGuard:
    def __init__(self, *, allow_loopback: bool = False, resolver: Resolver | None = None) -> None:
        self.allow_loopback = allow_loopback
        self.resolver = resolver or system_resolver

    def _refuse(self, field: str, url: str, reason: str) -> UnsafeUrlError:
        return UnsafeUrlError(f"{field}: {reason}", details={"field": field, "reason": reason, "url": url[:200]})

    def check(self, url: str, *, field: str, resolve: bool = True) -> None:
        """Raise `UnsafeUrlError` unless `url` may be fetched or posted to."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        if parts.scheme not in ("https", "http"):
            raise self._refuse(field, url, "only https URLs are allowed")
        if parts.username or parts.password:
            raise self._refuse(field, url, "URLs with credentials are not allowed")
        if not host:
            raise self._refuse(field, url, "URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise self._refuse(field, url, "URL has an invalid port") from exc
        addresses = self.addresses(host, port, field=field, url=url, resolve=resolve)
        loopback_only = bool(addresses) and all(address_problem(a, allow_loopback=False) for a in addresses)
        if parts.scheme == "http" and not (self.allow_loopback and loopback_only):
            raise self._refuse(field, url, "only https URLs are allowed")

    def addresses(self, host: str, port: int, *, field: str, url: str, resolve: bool = True) -> list[str]:
        """The checked addresses `host` stands for (empty when not resolved and not a literal)."""
        if host in _LOCAL_NAMES or host.endswith(".localhost"):
            if not self.allow_loopback:
                raise self._refuse(field, url, "loopback address")
            return ["127.0.0.1"]
        literal = _legacy_ipv4(host.strip("[]"))
        try:
            ipaddress.ip_address(literal.split("%", 1)[0])
            candidates = [literal]
        except ValueError:
            if not resolve:
                return []
            try:
                candidates = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise self._refuse(field, url, "host does not resolve") from exc
        if not candidates:
            raise self._refuse(field, url, "host does not resolve")
        for address in candidates:
            problem = address_problem(address, allow_loopback=self.allow_loopback)
            if problem is not None:
                raise self._refuse(field, url, problem)
        return candidates


class DeadlineExceeded(httpcore.ReadTimeout):
    """The client's total deadline passed (httpx reports it as a ReadTimeout, a TimeoutException)."""


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def timeout(self, requested: float | None) -> float:
        """What a socket operation may take: its own timeout, cut to what is left of the deadline."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"the {self.seconds:g} s deadline passed")
        return left if requested is None else min(requested, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def _bounded(self, requested: float | None) -> tuple[float, bool]:
        timeout = self._deadline.timeout(requested)
        return timeout, requested is None or timeout < requested

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bounded, by_deadline = self._bounded(timeout)
        try:
            return self._inner.read(max_bytes, bounded)
        except httpcore.ReadTimeout as exc:
            if by_deadline:
                raise DeadlineExceeded(f"the {self._deadline.seconds:g} s deadline passed") from exc
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bounded, by_deadline = self._bounded(timeout)
        try:
            self._inner.write(buffer, bounded)
        except httpcore.WriteTimeout as exc:
            if by_deadline:
                raise DeadlineExceeded(f"the {self._deadline.seconds:g} s deadline passed") from exc
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.timeout(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves and checks every host at connect time, then connects to the checked address."""

    def __init__(self, guard: UrlGuard, deadline: _Deadline | None = None) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # An UnsafeUrlError passes through httpcore and httpx unchanged, so callers can tell
        # "refused by policy" from "could not connect".
        addresses = self._guard.addresses(host, port, field="url", url=f"{host}:{port}")
        last: Exception | None = None
        for address in addresses:
            bounded = timeout if self._deadline is None else self._deadline.timeout(timeout)
            try:
                stream = self._inner.connect_tcp(address, port, bounded, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return stream if self._deadline is None else _DeadlineStream(stream, self._deadline)
        raise httpcore.ConnectError(f"could not connect to {host}:{port}") from last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every outbound client.

    Loading the CA bundle takes longer than downloading a small video; each client made its own, twice.
    """
    return httpx.create_ssl_context()


def guarded_http_client(
    guard: UrlGuard, *, timeout: httpx.Timeout, follow_redirects: bool, deadline_seconds: float | None = None
) -> httpx.Client:
    """An httpx client that cannot reach a refused address, even through DNS tricks or redirects.

    With `deadline_seconds`, everything the client does from now on (each connect, TLS handshake, read and
    write, redirects included) ends by then: a request still running fails with `httpx.ReadTimeout` whose
    cause is `DeadlineExceeded`. Make one client per request to give each request its own deadline.
    """

    def check_each_request(request: httpx.Request) -> None:
        guard.check(str(request.url), field="url", resolve=False)

    tls = tls_context()
    transport = httpx.HTTPTransport(verify=tls, retries=0)
    # httpx has no public hook for the connect step; its pool is swapped for one with our backend.
    deadline = _Deadline(deadline_seconds) if deadline_seconds is not None else None
    transport._pool = httpcore.ConnectionPool(
        ssl_context=tls, network_backend=_GuardedBackend(guard, deadline), retries=0
    )
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=5,
        trust_env=False,
        event_hooks={"request": [check_each_request]},
    )
