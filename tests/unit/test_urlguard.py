"""Outbound URL checks: schemes, literal and resolved addresses, legacy spellings, connect-time checks; the total
deadline."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from shared.errors import UnsafeUrlError
from shared.urlguard import DeadlineExceeded, UrlGuard, guarded_http_client, tls_context
from tests.support.http_server import Reply, serve
from tests.support.trickle import Trickle, trickling_server

PUBLIC = {"hooks.example.com": ["93.184.215.14"], "v6.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}
REBIND = {"rebind.example.com": ["127.0.0.1"], "mixed.example.com": ["93.184.215.14", "10.0.0.5"]}


def fake_resolver(host: str, port: int) -> list[str]:
    table = PUBLIC | REBIND
    if host not in table:
        raise OSError("no such host")
    return table[host]


@pytest.fixture
def guard() -> UrlGuard:
    return UrlGuard(resolver=fake_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/kling",
        "https://v6.example.com:8443/x?y=1",
        "https://93.184.215.14/hook",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
    ],
)
def test_public_https_urls_pass(guard: UrlGuard, url: str) -> None:
    guard.check(url, field="webhook_url")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "only https URLs are allowed"),
        ("ftp://hooks.example.com/", "only https URLs are allowed"),
        ("file:///etc/passwd", "only https URLs are allowed"),
        ("https://user:pw@hooks.example.com/", "URLs with credentials are not allowed"),
        ("https://127.0.0.1/", "loopback address"),
        ("https://127.1.2.3/", "loopback address"),
        ("https://localhost/", "loopback address"),
        ("https://api.localhost/", "loopback address"),
        ("https://[::1]/", "loopback address"),
        ("https://[::ffff:127.0.0.1]/", "loopback address"),
        ("https://[64:ff9b::7f00:1]/", "loopback address"),
        ("https://2130706433/", "loopback address"),
        ("https://0x7f000001/", "loopback address"),
        ("https://0177.0.0.1/", "loopback address"),
        ("https://10.1.2.3/", "private address"),
        ("https://172.16.0.1/", "private address"),
        ("https://192.168.1.1/", "private address"),
        ("https://[fd00:ec2::254]/", "private address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local or cloud metadata address"),
        ("https://[fe80::1]/", "link-local or cloud metadata address"),
        ("https://100.100.100.200/", "non-public address"),
        ("https://0.0.0.0/", "non-public address"),
        ("https://224.0.0.1/", "non-public address"),
        ("https://rebind.example.com/", "loopback address"),
        ("https://mixed.example.com/", "private address"),
        ("https://nowhere.example.com/", "host does not resolve"),
    ],
)
def test_unsafe_urls_are_refused_with_field_and_reason(guard: UrlGuard, url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        guard.check(url, field="webhook_url")
    assert caught.value.details["field"] == "webhook_url"
    assert caught.value.details["reason"] == reason
    assert caught.value.status_code == 422


def test_local_mode_allows_loopback_http_but_nothing_else_private() -> None:
    local = UrlGuard(allow_loopback=True, resolver=fake_resolver)
    local.check("http://127.0.0.1:8080/hook", field="webhook_url")
    local.check("http://localhost:8080/hook", field="webhook_url")
    for url in ("http://10.0.0.1/", "https://169.254.169.254/", "http://hooks.example.com/"):
        with pytest.raises(UnsafeUrlError):
            local.check(url, field="webhook_url")


def test_guarded_client_refuses_loopback_at_connect_time() -> None:
    with serve(lambda _: Reply(200, b"secret")) as server:
        client = guarded_http_client(UrlGuard(), timeout=httpx.Timeout(2.0), follow_redirects=False)
        with pytest.raises(UnsafeUrlError):
            client.get(server.url)
        assert server.received == []


def test_guarded_client_refuses_dns_rebinding_at_connect_time() -> None:
    guard = UrlGuard(resolver=fake_resolver)
    guard.check("https://hooks.example.com/", field="url")  # looked public when accepted...
    PUBLIC_AT_CONNECT = {"hooks.example.com": ["127.0.0.1"]}  # ...but resolves to loopback later
    rebinding = UrlGuard(resolver=lambda host, port: PUBLIC_AT_CONNECT[host])
    client = guarded_http_client(rebinding, timeout=httpx.Timeout(2.0), follow_redirects=False)
    with pytest.raises(UnsafeUrlError, match="url: loopback address"):
        client.get("https://hooks.example.com/")


def test_guarded_client_follows_safe_redirects_and_refuses_unsafe_ones() -> None:
    def script(request):
        if request.path == "/start":
            return Reply(302, headers={"Location": "/final"})
        if request.path == "/final":
            return Reply(200, b"ok")
        return Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with serve(script) as server:
        client = guarded_http_client(UrlGuard(allow_loopback=True), timeout=httpx.Timeout(2.0), follow_redirects=True)
        assert client.get(f"{server.url}/start").content == b"ok"
        with pytest.raises(UnsafeUrlError, match="link-local"):
            client.get(f"{server.url}/evil")


def test_guarded_clients_load_the_ca_bundle_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    tls_context.cache_clear()
    try:
        clients = [guarded_http_client(UrlGuard(), timeout=httpx.Timeout(2.0), follow_redirects=False) for _ in "ab"]
    finally:
        tls_context.cache_clear()

    assert len(loaded) == 1
    verifying = tls_context()
    assert verifying.verify_mode is ssl.CERT_REQUIRED
    assert verifying.check_hostname
    for client in clients:
        client.close()


# -- a total deadline ---------------------------------------------------------------------------------------

# 24 bytes of headers, one every 0.1 s: each read finishes well within a 1 s read timeout, the whole takes 2.4 s.
TRICKLED = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"


def loopback_client(**kwargs: object) -> httpx.Client:
    return guarded_http_client(
        UrlGuard(allow_loopback=True),
        timeout=httpx.Timeout(1.0),
        follow_redirects=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_per_read_timeouts_alone_let_a_trickling_answer_run_on() -> None:
    """Why a deadline is needed: httpx's timeouts bound each read, and every read here is quick."""
    with trickling_server(interval=0.1, answer=TRICKLED) as trickle, loopback_client() as client:
        response = client.post(f"{trickle.url}/hook", content=b"{}")
    assert response.status_code == 200
    assert (len(trickle.finished), trickle.cut_off) == (1, [])


def test_a_deadline_cuts_a_trickling_answer_off() -> None:
    with trickling_server(interval=0.1, answer=TRICKLED) as trickle, loopback_client(deadline_seconds=0.5) as client:
        with pytest.raises(httpx.ReadTimeout, match=r"0\.5 s deadline passed") as caught:
            client.post(f"{trickle.url}/hook", content=b"{}")
        assert isinstance(caught.value.__cause__, DeadlineExceeded)
        trickle_wait(trickle)
    assert trickle.finished == []
    assert len(trickle.cut_off) == 1


def test_a_deadline_already_past_makes_no_connection() -> None:
    with serve(lambda request: Reply(200)) as server, loopback_client(deadline_seconds=0.000001) as client:
        with pytest.raises(httpx.ReadTimeout, match="deadline passed"):
            client.post(f"{server.url}/hook", content=b"{}")
        assert server.received == []


def test_an_answer_within_the_deadline_is_read_as_usual() -> None:
    with serve(lambda request: Reply(204)) as server, loopback_client(deadline_seconds=5) as client:
        assert client.post(f"{server.url}/hook", content=b"{}").status_code == 204
    assert len(server.received) == 1


def trickle_wait(trickle: Trickle) -> None:
    """Until the server noticed the hang-up (its next byte fails to send)."""
    for _ in range(100):
        if trickle.cut_off:
            return
        time.sleep(0.05)
