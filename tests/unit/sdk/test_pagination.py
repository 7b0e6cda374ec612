"""`jobs.list` walks every page with the same filters; `list_page` reads one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from kling_relay import APIResponseError

from shared.models.common import JobStatus
from tests.unit.sdk.conftest import async_client, job_json

PAGES = {
    None: ([job_json(JobStatus.SUCCEEDED) for _ in range(3)], "c1"),
    "c1": ([job_json(JobStatus.SUCCEEDED) for _ in range(3)], "c2"),
    "c2": ([job_json(JobStatus.SUCCEEDED)], None),
}


def paged(request: httpx.Request) -> httpx.Response:
    items, next_cursor = PAGES[request.url.params.get("cursor")]
    body = {"items": items, **({"next_cursor": next_cursor} if next_cursor else {})}
    return httpx.Response(200, json=body)


def expected_ids(start: str | None = None) -> list[str]:
    cursors = [None, "c1", "c2"]
    return [job["id"] for cursor in cursors[cursors.index(start) :] for job in PAGES[cursor][0]]


def test_list_iterates_over_every_page_with_the_filters(client, sleeps) -> None:
    relay, api = client(paged)
    jobs = list(relay.jobs.list(status="succeeded", provider="kie", page_size=3))
    assert [job.id for job in jobs] == expected_ids()
    assert len(api.requests) == 3
    for request in api.requests:
        assert request.url.path == "/v1/jobs"
        assert request.url.params["status"] == "succeeded"
        assert request.url.params["provider"] == "kie"
        assert request.url.params["limit"] == "3"
    assert [request.url.params.get("cursor") for request in api.requests] == [None, "c1", "c2"]


def test_listing_is_lazy_and_starts_where_asked(client, sleeps) -> None:
    relay, api = client(paged)
    pager = relay.jobs.list(cursor="c1")
    assert api.requests == []
    first = next(iter(pager))
    assert first.id == expected_ids("c1")[0]
    assert len(api.requests) == 1
    pages = list(pager.pages())
    assert [page.next_cursor for page in pages] == ["c2", None]


def test_list_page_reads_one_page(client, sleeps) -> None:
    relay, api = client(paged)
    page = relay.jobs.list_page(limit=3)
    assert [job.id for job in page.items] == [job["id"] for job in PAGES[None][0]]
    assert page.next_cursor == "c1"
    assert len(api.requests) == 1
    assert "status" not in api.requests[0].url.params


def test_a_page_repeating_its_own_cursor_stops_the_walk(client, sleeps) -> None:
    relay, _ = client(lambda _: httpx.Response(200, json={"items": [], "next_cursor": "same"}))
    with pytest.raises(APIResponseError, match="same"):
        list(relay.jobs.list(cursor="same"))


def test_async_listing_walks_every_page(sleeps) -> None:
    async def scenario() -> list[str]:
        relay, _ = async_client(paged)
        return [job.id async for job in relay.jobs.list(page_size=3)]

    assert asyncio.run(scenario()) == expected_ids()
