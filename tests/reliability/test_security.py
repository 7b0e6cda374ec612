"""Security over the local stack: tenants cannot read, list or cancel each other's jobs; bad and revoked keys
get nothing; SSRF attempts through `webhook_url`, frame URLs and provider result URLs (loopback, private,
link-local, cloud metadata, IPv6 and numeric spellings, DNS answers, redirects) reach nothing.

Local mode lets outbound fetches reach loopback (the provider emulator lives there), so loopback cases run
with a function's `local_mode` turned off: the URL guard it then uses is production's. DNS cases give the
function a runtime whose resolver answers what the test says, so no real lookup happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.providers.aimlapi import AimlapiProvider
from shared.providers.base import ProviderState, TaskStatus
from shared.repository.keys import KeyRepository
from shared.runtime import Runtime
from tests.reliability.harness import Rig, spying_on_connects, tagged
from tests.reliability.invariants import Expect, item_unchanged
from tests.support.http_server import Reply, serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

METADATA = "169.254.169.254"
LOCAL_MODE_UNSAFE = [
    f"https://{METADATA}/latest/meta-data/iam/security-credentials/",
    "https://10.0.0.7/hook",
    "https://172.16.4.2/hook",
    "https://192.168.1.20/hook",
    "https://100.64.0.9/hook",  # carrier-grade NAT
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://[fd00::7]/hook",  # unique local
    "https://[fe80::1]/hook",  # link-local
    "https://[::]/hook",
    "https://[::ffff:169.254.169.254]/hook",  # IPv4-mapped
    "https://[::ffff:10.0.0.7]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata address
    "https://2852039166/hook",  # the metadata address in decimal
    "https://0xa9fea9fe/hook",  # ... in hex
    "https://[fd00:ec2::254]/latest/meta-data/",  # EC2's IPv6 metadata endpoint
]
OCTAL_METADATA = "https://0251.0376.0251.0376/hook"  # the metadata address in octal (httpx cannot parse it)
LOOPBACK = [
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://localhost/hook",
    "https://app.localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://2130706433/hook",
    "https://0x7f000001/hook",
    "https://127.1/hook",
    "http://127.0.0.1:8080/hook",
]
RESOLVED = {
    "metadata.google.internal": [METADATA],
    "instance-data.ec2.internal": [METADATA],
    "mixed.example.test": ["93.184.216.34", "10.0.0.8"],  # one private answer among public ones
    "v6-private.example.test": ["fd12:3456::1"],
}


def fake_resolver(answers: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} does not resolve (test resolver)")
        return answers[host]

    return resolve


def authorization(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- tenancy -------------------------------------------------------------------------------------


@pytest.fixture
def frozen_job(system: Rig) -> dict[str, Any]:
    """Tenant A's job, queued at the provider for a minute, its poller stopped: nothing moves it on its own."""
    system.emulator.set_job_seconds(60, provider="pixwith")
    job: dict[str, Any] = system.api.submit({"provider": "pixwith", "prompt": tagged("tenant a's job")})
    system.stop_poller(job["id"])
    system.wait_idle()
    return job


def test_another_tenant_cannot_read_list_or_cancel_a_job(system: Rig, frozen_job: dict[str, Any]) -> None:
    a_done = system.api.submit({"provider": "apimart", "prompt": tagged("tenant a's finished job")})
    system.wait_terminal([a_done["id"]])
    system.wait_idle()
    job_ids = [frozen_job["id"], a_done["id"]]
    before = {job_id: system.raw_item(job_id) for job_id in job_ids}
    b = system.tenant("tenant-b")
    b_client = system.client(b)
    b_job = b_client.submit({"provider": "apimart", "prompt": tagged("tenant b's job")})
    a_cursor = system.api.list(limit=1)["next_cursor"]
    assert a_cursor is not None

    for job_id in job_ids:
        for method, path in (("GET", f"/jobs/{job_id}"), ("POST", f"/jobs/{job_id}/cancel")):
            for extra in ({}, {"X-Tenant-Id": "reliability"}, {"X-Amzn-Oidc-Identity": "reliability"}):
                answer = system.http.request(
                    method, f"{system.base_url}{path}", headers={**authorization(b.api_key), **extra}
                )
                assert answer.status_code == 404, (method, path, extra, answer.text)
                assert answer.json()["error"]["code"] == "not_found"
    listed: set[str] = set()
    for query in ({}, {"status": "queued"}, {"status": "succeeded"}, {"provider": "pixwith"}, {"cursor": a_cursor}):
        answer = system.http.get(f"{system.base_url}/jobs", params=query, headers=authorization(b.api_key))
        assert answer.status_code == 200, answer.text
        listed |= {item["id"] for item in answer.json()["items"]}
    assert listed == {b_job["id"]}

    # The same Idempotency-Key and body from another tenant is another job, not a replay of A's.
    shared_key = "order-7"
    request = {"provider": "apimart", "prompt": tagged("same key, two tenants")}
    mine = system.post_job(request, idempotency_key=shared_key)
    theirs = system.post_job(request, key=b, idempotency_key=shared_key)
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]

    for job_id in job_ids:
        assert item_unchanged(before[job_id], system.raw_item(job_id)) == [], job_id
    assert system.tenant_job_ids("tenant-b") == {b_job["id"], theirs.json()["id"]}
    system.wait_terminal([b_job["id"], mine.json()["id"], theirs.json()["id"]])
    system.check(
        {
            a_done["id"]: Expect("succeeded"),
            b_job["id"]: Expect("succeeded"),
            mine.json()["id"]: Expect("succeeded"),
            theirs.json()["id"]: Expect("succeeded"),
        }
    )


def test_missing_malformed_unknown_and_revoked_keys_get_nothing(system: Rig, frozen_job: dict[str, Any]) -> None:
    job_id = frozen_job["id"]
    before = system.raw_item(job_id)
    spare = system.tenant("reliability")  # a second key of the same tenant
    doomed = system.tenant("reliability")
    assert system.client(doomed).get(job_id)["id"] == job_id
    KeyRepository(system.stack.table_name, system.stack.aws.client("dynamodb")).revoke(api_key=doomed.api_key)
    assert system.stack.api is not None
    system.stack.api.clear_authorizer_cache()

    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {system.key.api_key}"},
        {"Authorization": system.key.api_key},
        {"Authorization": f"Bearer {system.key.api_key}x"},
        {"Authorization": f"Bearer {system.key.api_key[:-1]}"},
        {"Authorization": f"Bearer {system.key.api_key.upper()}"},
        {"Authorization": "Bearer kr_" + "A" * 43},
        {"Authorization": "Bearer kr_" + "A" * 500},
        {"Authorization": f"Bearer {doomed.api_key}"},
        {"X-Api-Key": system.key.api_key},
    ]
    requests = [
        ("GET", f"/jobs/{job_id}", None),
        ("GET", "/jobs", None),
        ("POST", f"/jobs/{job_id}/cancel", None),
        ("POST", "/jobs", {"provider": "vidgo", "prompt": "unauthorized"}),
    ]
    submits_before = sum(stats.submits for stats in system.emulator.stats().values())
    for headers in bad_headers:
        for method, path, body in requests:
            answer = system.http.request(method, f"{system.base_url}{path}", headers=headers, json=body)
            assert answer.status_code == 401, (headers, method, path, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized", answer.text
    assert sum(stats.submits for stats in system.emulator.stats().values()) == submits_before
    assert item_unchanged(before, system.raw_item(job_id)) == []
    assert system.client(spare).get(job_id)["status"] == "queued", "revoking one key leaves the tenant's others"


# -- SSRF at submit ---------------------------------------------------------------------------------


def assert_refused_at_submit(rig: Rig, urls: list[str]) -> None:
    """Every URL, as webhook_url, first_frame_url and last_frame_url: 422 unsafe_url naming the field, and
    no job stored, no provider called."""
    stored = rig.tenant_job_ids(rig.key.tenant)
    submits = sum(stats.submits for stats in rig.emulator.stats().values())
    frame = "https://93.184.216.34/first.png"  # a public address: only the last frame is wrong
    for url in urls:
        for field, request in (
            ("webhook_url", {"provider": "kie", "prompt": "ssrf", "webhook_url": url}),
            ("first_frame_url", {"provider": "kie", "prompt": "ssrf", "first_frame_url": url}),
            ("last_frame_url", {"provider": "apimart", "prompt": "ssrf", "quality": "pro", "first_frame_url": frame,
                                "last_frame_url": url}),
        ):  # fmt: skip
            answer = rig.post_job(request)
            assert answer.status_code == 422, (field, url, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["details"]["field"]) == ("unsafe_url", field), (url, error)
    assert rig.tenant_job_ids(rig.key.tenant) == stored
    assert sum(stats.submits for stats in rig.emulator.stats().values()) == submits


def test_webhook_and_frame_urls_to_private_link_local_and_metadata_addresses_are_refused(system: Rig) -> None:
    assert_refused_at_submit(system, [*LOCAL_MODE_UNSAFE, OCTAL_METADATA])


def test_webhook_and_frame_urls_to_loopback_are_refused_by_the_production_guard(system: Rig) -> None:
    with system.settings_for("api", local_mode=False):
        assert_refused_at_submit(system, LOOPBACK)


def test_webhook_and_frame_urls_whose_names_resolve_to_private_addresses_are_refused(system: Rig) -> None:
    host = system.host("api")
    with system.runtime_for("api", Runtime(host.runtime.settings, resolver=fake_resolver(RESOLVED))):
        assert_refused_at_submit(system, [f"https://{name}/hook" for name in RESOLVED] + ["https://nowhere.test/x"])


def test_urls_that_are_not_http_are_refused_at_submit(system: Rig) -> None:
    stored = system.tenant_job_ids(system.key.tenant)
    for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:6379/_INFO", "javascript:alert(1)"):
        answer = system.post_job({"provider": "kie", "prompt": "ssrf", "webhook_url": url})
        assert answer.status_code == 422, (url, answer.text)
    assert system.tenant_job_ids(system.key.tenant) == stored


# -- SSRF through provider result URLs ------------------------------------------------------------


@contextlib.contextmanager
def result_urls_served_as(rig: Rig, monkeypatch: pytest.MonkeyPatch, poisoned: dict[str, str]) -> Iterator[None]:
    """AI/ML API status answers for tasks with these prompts report success with this result URL instead."""
    original = AimlapiProvider.parse_status

    def parse_status(adapter: AimlapiProvider, response: httpx.Response, task_id: str) -> TaskStatus:
        status = original(adapter, response, task_id)
        task = rig.emulator.task(status.task_id)
        if task is not None and task.prompt in poisoned and status.state is ProviderState.SUCCEEDED:
            return status.model_copy(update={"result_urls": (poisoned[task.prompt],)})
        return status

    monkeypatch.setattr(AimlapiProvider, "parse_status", parse_status)
    yield


def run_poisoned_jobs(rig: Rig, monkeypatch: pytest.MonkeyPatch, urls: list[str]) -> dict[str, str]:
    """One AI/ML API job per URL, each finished with that result URL; returns job id -> URL."""
    tag = tagged("poisoned result")
    poisoned = {f"{tag} {index}": url for index, url in enumerate(urls)}
    with result_urls_served_as(rig, monkeypatch, poisoned):
        jobs = rig.submit_all([{"provider": "aimlapi", "prompt": prompt} for prompt in poisoned])
        rig.wait_terminal([job["id"] for job in jobs])
    for job in jobs:
        record = rig.record(job["id"])
        assert record.error is not None
        assert "not allowed" in record.error.message or "only https" in record.error.message, record.error
        assert record.result_urls == (poisoned[job["request"]["prompt"]],)
    return {job["id"]: poisoned[job["request"]["prompt"]] for job in jobs}


def test_result_urls_pointing_inside_are_never_fetched(system: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = [url.replace("/hook", "/video.mp4") for url in LOCAL_MODE_UNSAFE]
    with spying_on_connects() as spy:
        jobs = run_poisoned_jobs(system, monkeypatch, urls)
    refused_hosts = {httpx.URL(url).host.lower() for url in urls} | {METADATA, "10.0.0.7"}
    assert not spy.hosts() & refused_hosts, spy.hosts() & refused_hosts
    system.check({job_id: Expect("failed", error="result_invalid") for job_id in jobs})


def test_result_urls_that_cannot_be_parsed_fail_the_job_at_once(system: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = [
        OCTAL_METADATA.replace("/hook", "/video.mp4"),
        "https://[::1/video.mp4",
        "https://cdn.example.test/video\x00.mp4",
    ]
    assert system.stack.events is not None
    archive = system.stack.events.mapping("ArchiveFunction")
    given_up = archive.stats.dead_lettered
    tag = tagged("unparseable result")
    poisoned = {f"{tag} {index}": url for index, url in enumerate(urls)}
    with result_urls_served_as(system, monkeypatch, poisoned):
        jobs = system.submit_all([{"provider": "aimlapi", "prompt": prompt} for prompt in poisoned])
        job_ids = [job["id"] for job in jobs]
        try:
            system.wait_for(
                lambda: (
                    all(system.record(j).terminal for j in job_ids)
                    or archive.stats.dead_lettered >= given_up + len(urls)
                ),
                40,
                "the jobs to end or their archive records to be given up on",
            )
            system.check({job_id: Expect("failed", error="result_invalid") for job_id in job_ids})
        finally:
            for job_id in job_ids:
                if not system.record(job_id).terminal:
                    system.api.cancel(job_id)  # stop its tracking: the poller would hold it for 30 minutes


def test_result_urls_redirecting_inside_are_not_followed_there(system: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [
        f"https://{METADATA}/latest/meta-data/",
        "http://10.0.0.9/video.mp4",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "https://[fd00::9]/video.mp4",
    ]
    with serve(lambda request: Reply(302, headers={"Location": targets[int(request.path.strip("/"))]})) as hop:
        with spying_on_connects() as spy:
            jobs = run_poisoned_jobs(system, monkeypatch, [f"{hop.url}/{index}" for index in range(len(targets))])
        assert sorted(request.path for request in hop.received) == [f"/{i}" for i in range(len(targets))]
    assert not spy.hosts() & {METADATA, "10.0.0.9", "::ffff:a9fe:a9fe", "fd00::9"}, spy.hosts()
    system.check({job_id: Expect("failed", error="result_invalid") for job_id in jobs})


def test_result_urls_on_loopback_are_never_fetched_by_the_production_guard(
    system: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(lambda _: Reply(200, b"\x00\x00\x00\x18ftypmp42", {"Content-Type": "video/mp4"})) as inside:
        port = inside.url.rsplit(":", 1)[1]
        urls = [
            f"http://127.0.0.1:{port}/video.mp4",
            f"https://127.0.0.1:{port}/video.mp4",
            f"http://localhost:{port}/video.mp4",
            f"http://2130706433:{port}/video.mp4",
            f"http://[::ffff:127.0.0.1]:{port}/video.mp4",
        ]
        with system.settings_for("archive", local_mode=False):
            jobs = run_poisoned_jobs(system, monkeypatch, urls)
        assert inside.received == []
    system.check({job_id: Expect("failed", error="result_invalid") for job_id in jobs})


# -- SSRF through app webhooks at delivery time --------------------------------------------------------


def test_webhooks_are_not_redirected_or_rebound_inside(system: Rig) -> None:
    """A webhook endpoint answering 302 to the metadata address is not followed; a name that resolved to a
    public address at submit and to the metadata address at delivery (DNS rebinding) is not connected to."""
    public = fake_resolver({"hooks.example.test": ["93.184.216.34"]})
    rebound = fake_resolver({"hooks.example.test": [METADATA]})
    api, deliver = system.host("api"), system.host("deliver")
    delivered_before = deliver.invocations
    with (
        serve(lambda _: Reply(302, headers={"Location": f"http://{METADATA}/latest/meta-data/"})) as hop,
        spying_on_connects() as spy,
        system.runtime_for("api", Runtime(api.runtime.settings, resolver=public)),
        system.runtime_for("deliver", Runtime(deliver.runtime.settings, resolver=rebound)),
    ):
        jobs = system.submit_all(
            [
                {"provider": "vidgo", "prompt": tagged("redirecting webhook"), "webhook_url": f"{hop.url}/hook"},
                {
                    "provider": "vidgo",
                    "prompt": tagged("rebound webhook"),
                    "webhook_url": "https://hooks.example.test/h",
                },
            ]
        )
        system.wait_terminal([job["id"] for job in jobs])
        system.wait_idle()
        system.wait_for(lambda: len(hop.received) >= 1, 15, "the redirecting endpoint to be called")
        assert deliver.invocations > delivered_before
    assert all(request.path == "/hook" for request in hop.received)
    assert not spy.hosts() & {METADATA, "93.184.216.34"}, spy.hosts()
    system.check({job["id"]: Expect("succeeded", completed_by="callback") for job in jobs})
