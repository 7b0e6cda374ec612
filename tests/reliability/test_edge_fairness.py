"""Fairness and edge protection over the whole local stack.

- A tenant whose webhook endpoint trickles its answer (a byte every half second) next to a tenant whose endpoint
  answers at once: the healthy tenant's events all arrive within the delivery deadline of their change, each
  once, while the trickling deliveries are cut off at the deadline and their endpoint ends up paused.
- Junk callbacks at a high rate: every one is refused (the callback route's own throttle, else the callback
  function's verification), counted, and the apps' routes, each with its own throttle, answer every request.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.repository import schema
from shared.repository.codec import from_attributes, to_attributes
from shared.repository.endpoints import Endpoint
from shared.webhooks.breaker import FAILURES_TO_PAUSE
from tests.reliability.harness import Rig, tagged
from tests.support.http_server import Received, Reply, serve
from tests.support.trickle import trickling_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The production deadline: what "delayed by no more than the deadline" is measured against.
DEADLINE_SECONDS = 10.0
CALLBACK_ROUTE = ("POST", "/callbacks/{provider}/{job_id}")


@pytest.fixture
def healthy() -> Iterator[tuple[str, list[tuple[float, dict[str, Any]]]]]:
    """A receiver that answers 204 at once; (wall-clock arrival, event) for every delivery."""
    arrivals: list[tuple[float, dict[str, Any]]] = []
    lock = threading.Lock()

    def receive(request: Received) -> Reply:
        with lock:
            arrivals.append((time.time(), json.loads(request.body)))
        return Reply(204)

    with serve(receive) as receiver:
        yield f"{receiver.url}/hooks/healthy", arrivals


def test_a_trickling_endpoint_delays_no_other_tenants_webhooks(
    system: Rig, healthy: tuple[str, list[tuple[float, dict[str, Any]]]]
) -> None:
    healthy_url, arrivals = healthy
    slow_key, fast_key = system.tenant("trickling-tenant"), system.tenant("healthy-tenant")
    assert system.host("deliver").runtime.settings.webhook_deadline_seconds == DEADLINE_SECONDS
    # A whole answer would take 47 x 0.5 = 23.5 s: every trickling delivery is still going at the deadline.
    with trickling_server(interval=0.5) as trickle:
        slow_url = f"{trickle.url}/hooks/slow"
        # Two slow jobs: their events (four each) can hold at most 8 of the deliver mapping's 10 concurrent
        # batches, so a healthy event always finds a free one: what is measured is the batching, not a shortage.
        requests = [
            (slow_key, {"provider": "apimart", "prompt": tagged("slow endpoint"), "webhook_url": slow_url})
            for _ in range(2)
        ] + [
            (fast_key, {"provider": "apimart", "prompt": tagged("fast endpoint"), "webhook_url": healthy_url})
            for _ in range(6)
        ]
        with ThreadPoolExecutor(max_workers=4) as pool:
            jobs = list(pool.map(lambda pair: system.client(pair[0]).submit(dict(pair[1])), requests))
        fast_ids = {job["id"] for job, (key, _) in zip(jobs, requests, strict=True) if key is fast_key}
        system.wait_terminal([job["id"] for job in jobs])

        def expected() -> set[str]:
            return {event["id"] for event in system.events.drain() if event["data"]["id"] in fast_ids}

        system.wait_for(
            lambda: expected() and {event["id"] for _, event in arrivals} >= expected(),
            timeout=60,
            what="every event of the healthy tenant's jobs at its endpoint",
        )
        system.wait_for(lambda: len(trickle.cut_off) >= 2, timeout=60, what="trickling deliveries cut off")

    delivered = [event["id"] for _, event in arrivals]
    assert sorted(delivered) == sorted(expected()), "each healthy event exactly once: nothing redelivered"
    assert len(delivered) >= 3 * len(fast_ids)
    late = {
        event["id"]: round(arrived - datetime.fromisoformat(event["created_at"]).astimezone(UTC).timestamp(), 2)
        for arrived, event in arrivals
        if arrived - datetime.fromisoformat(event["created_at"]).timestamp() > DEADLINE_SECONDS
    }
    assert late == {}, f"healthy deliveries later than the deadline after their change: {late}"
    assert trickle.finished == [], "a trickling answer ran to its end: no deadline cut it off"
    assert trickle.arrived, "the trickling endpoint was never tried"
    assert max(trickle.arrived) - min(trickle.arrived) < 600  # still going on when the healthy ones were done


def test_the_trickling_endpoint_is_paused_and_stops_taking_time(system: Rig) -> None:
    """Enough cut-off deliveries pause the endpoint: its next events wait on the queue without a connection."""
    key = system.tenant("paused-tenant")
    with trickling_server(interval=0.5) as trickle:
        url = f"{trickle.url}/hooks/paused"
        with system.settings_for("deliver", webhook_deadline_seconds=1.0):
            jobs = [
                system.client(key).submit({"provider": "apimart", "prompt": tagged("pause me"), "webhook_url": url})
                for _ in range(3)
            ]
            system.wait_terminal([job["id"] for job in jobs])
            system.wait_for(
                lambda: (
                    breaker_state(system, "paused-tenant", url) is not None
                    and breaker_state(system, "paused-tenant", url)["opens"] >= 1
                ),
                timeout=90,
                what="the endpoint's breaker to open",
            )
            attempts = len(trickle.arrived)
            time.sleep(3)  # events keep coming back (5 s retries) while it is paused: none reaches it
            assert len(trickle.arrived) == attempts
    state = breaker_state(system, "paused-tenant", url)
    assert state is not None
    assert state["paused_until"] > time.time()
    assert attempts >= FAILURES_TO_PAUSE
    assert trickle.finished == []


def breaker_state(system: Rig, tenant: str, url: str) -> dict[str, Any] | None:
    endpoint = Endpoint(tenant, url)
    key = to_attributes({schema.PK: schema.endpoint_pk(tenant, endpoint.url_sha256), schema.SK: schema.ENDPOINT_SK})
    item = system.stack.aws.client("dynamodb").get_item(TableName=system.stack.table_name, Key=key).get("Item")
    return from_attributes(item) if item else None


def test_junk_callbacks_at_a_high_rate_are_refused_counted_and_leave_the_apps_routes_alone(system: Rig) -> None:
    assert system.stack.api is not None
    api = system.stack.api
    limits = api.gateway.throttling
    callback_limit = limits.limit_for(CALLBACK_ROUTE)
    app_limit = limits.limit_for(("GET", "/jobs"))
    assert callback_limit is not None
    assert app_limit is not None
    assert (callback_limit.rate, callback_limit.burst) == (20, 40)  # the template's, as deployed
    assert (app_limit.rate, app_limit.burst) == (50, 100)
    throttled_before = api.throttled().get(CALLBACK_ROUTE, 0)
    callback_host = system.host("callback")
    invoked_before = callback_host.invocations
    # A poll-only provider: no genuine callback shares the route (and its counts) with the junk.
    job = system.api.submit({"provider": "apimart", "prompt": tagged("a real job among the junk")})

    junk = 400
    http = httpx.Client(timeout=30, trust_env=False, limits=httpx.Limits(max_connections=32))
    app_statuses: list[int] = []
    stop = threading.Event()

    def junk_callback(n: int) -> int:
        job_id = job["id"] if n % 2 else "job_" + secrets.token_hex(13)[:26].translate(str.maketrans("ilou", "0123"))
        url = f"{system.base_url}/callbacks/vidgo/{job_id}?token={secrets.token_urlsafe(32)}"
        return http.post(url, json={"code": 200, "data": {"task_id": "forged", "status": "finished"}}).status_code

    def app_traffic() -> None:
        headers = {"Authorization": f"Bearer {system.key.api_key}"}
        with httpx.Client(base_url=system.base_url, headers=headers, timeout=30, trust_env=False) as app_http:
            while not stop.is_set():
                app_statuses.append(app_http.get("/jobs", params={"limit": 5}).status_code)
                app_statuses.append(app_http.get(f"/jobs/{job['id']}").status_code)
                time.sleep(0.05)

    app = threading.Thread(target=app_traffic)
    app.start()
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(junk_callback, range(junk)))
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        app.join(30)
        http.close()

    throttled = statuses.count(429)
    refused = [status for status in statuses if status != 429]
    # Every junk callback was refused: by the route's throttle, or by the function (bad token, unknown job).
    assert set(refused) <= {401, 404}, sorted(set(refused))
    # Counted where each was refused: the gateway's throttle count, and the function's invocations.
    assert api.throttled().get(CALLBACK_ROUTE, 0) - throttled_before == throttled
    assert callback_host.invocations - invoked_before == len(refused)
    # A token bucket of 40 refilled at 20 a second lets no more than this through in the time it took.
    assert len(refused) <= callback_limit.burst + callback_limit.rate * elapsed + 1
    assert throttled >= junk - (callback_limit.burst + callback_limit.rate * elapsed + 1)
    # The apps' routes, each with its own bucket, answered every request during the flood.
    assert app_statuses, "no app traffic ran during the flood"
    assert set(app_statuses) == {200}, sorted(set(app_statuses))
    assert api.throttled().get(("GET", "/jobs"), 0) == 0
    assert api.throttled().get(("GET", "/jobs/{job_id}"), 0) == 0
    # The real job was not disturbed by junk naming it.
    system.wait_terminal([job["id"]])
    assert system.record(job["id"]).status.value == "succeeded"
