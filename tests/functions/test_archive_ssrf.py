"""The archive function never fetches from loopback, private, link-local or metadata addresses (outside local mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpcore
import httpx
import pytest
import respx

from shared.models.common import JobStatus
from shared.models.job import ErrorCode
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime
from tests.fixtures.cloud import Cloud, fake_resolver
from tests.functions.test_archive_handler import VIDEO, archiving_job, object_keys, run
from tests.support.http_server import Received, Reply, serve


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the outbound client opens (it still opens them)."""
    opened: list[tuple[str, int]] = []
    original = httpcore.SyncBackend.connect_tcp

    def connect_tcp(self: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append((host, port))
        return original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    return opened


@pytest.fixture
def public_rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    """As deployed: not local mode, so loopback is refused like any other non-public address."""
    return install_runtime(cloud.runtime(httpx.Client()))


def assert_refused(jobs: JobRepository, job_id: str, reason: str) -> None:
    stored = jobs.get(job_id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.code is ErrorCode.RESULT_INVALID
    assert stored.error.message.startswith("the result URL is not allowed")
    assert reason in stored.error.message
    assert stored.outputs == ()


def test_a_loopback_server_is_not_reached_outside_local_mode(
    cloud: Cloud, jobs: JobRepository, public_rt: Runtime, connections: list[tuple[str, int]]
) -> None:
    with serve(lambda request: Reply(200, VIDEO, {"Content-Type": "video/mp4"})) as server:
        port = server.url.rsplit(":", 1)[1]
        urls = {
            f"http://127.0.0.1:{port}/fox.mp4": "loopback address",
            f"https://127.0.0.1:{port}/fox.mp4": "loopback address",
            f"https://localhost:{port}/fox.mp4": "loopback address",
            f"https://[::1]:{port}/fox.mp4": "loopback address",
            f"https://2130706433:{port}/fox.mp4": "loopback address",
        }
        for url, reason in urls.items():
            job, record = archiving_job(cloud, jobs, [url])
            assert run(record) == []
            assert_refused(jobs, job.id, reason)
        assert server.received == []
    assert connections == []
    assert object_keys(cloud) == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.5/fox.mp4", "private address"),
        ("https://172.16.4.2/fox.mp4", "private address"),
        ("https://192.168.1.20/fox.mp4", "private address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local or cloud metadata address"),
        ("https://[fe80::1]/fox.mp4", "link-local or cloud metadata address"),
        ("https://[::ffff:169.254.169.254]/latest/meta-data/", "link-local or cloud metadata address"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "private address"),
        ("https://0.0.0.0/fox.mp4", "non-public address"),
        ("https://internal.corp/fox.mp4", "host does not resolve"),
        ("file:///etc/passwd", "only https URLs are allowed"),
    ],
)
def test_private_and_metadata_addresses_fail_the_job_without_a_connection(
    cloud: Cloud, jobs: JobRepository, public_rt: Runtime, connections: list[tuple[str, int]], url: str, reason: str
) -> None:
    job, record = archiving_job(cloud, jobs, [url])
    assert run(record) == []
    assert_refused(jobs, job.id, reason)
    assert connections == []


def test_a_host_resolving_to_loopback_is_refused_at_connect_time(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], connections: list[tuple[str, int]]
) -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "videos.example.net" else fake_resolver(host, port)

    install_runtime(Runtime(cloud.settings, clients=cloud.clients, provider_http=httpx.Client(), resolver=rebinding))
    with serve(lambda request: Reply(200, VIDEO, {"Content-Type": "video/mp4"})) as server:
        port = server.url.rsplit(":", 1)[1]
        job, record = archiving_job(cloud, jobs, [f"https://videos.example.net:{port}/fox.mp4"])
        assert run(record) == []
        assert server.received == []
    assert_refused(jobs, job.id, "loopback address")
    assert connections == []


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "link-local or cloud metadata address"),
        ("https://169.254.169.254/latest/meta-data/iam/security-credentials/", "link-local or cloud metadata address"),
        ("https://10.0.0.5/internal.mp4", "private address"),
        ("http://cdn.example.com/fox.mp4", "only https URLs are allowed"),
    ],
)
def test_a_public_url_redirecting_to_a_private_address_is_not_followed(
    cloud: Cloud, jobs: JobRepository, public_rt: Runtime, target: str, reason: str
) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get("https://cdn.example.com/fox.mp4").respond(302, headers={"Location": target})
        private = router.route(host__in=("169.254.169.254", "10.0.0.5")).respond(200, content=b"secret")
        downgraded = router.route(scheme="http").respond(200, content=VIDEO)
        job, record = archiving_job(cloud, jobs, ["https://cdn.example.com/fox.mp4"])
        assert run(record) == []
        assert not private.called
        assert not downgraded.called
        assert router.calls.call_count == 1
    assert_refused(jobs, job.id, reason)


def test_local_mode_still_refuses_a_redirect_to_the_metadata_address(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], connections: list[tuple[str, int]]
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), local_mode=True))

    def script(request: Received) -> Reply:
        return Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})

    with serve(script) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
        assert [r.path for r in server.received] == ["/fox.mp4"]
    assert_refused(jobs, job.id, "link-local or cloud metadata address")
    assert [host for host, _ in connections] == ["127.0.0.1"]
