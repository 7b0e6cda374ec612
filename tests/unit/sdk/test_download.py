"""`jobs.download`: streamed to disk, checked against the job's SHA-256 and size, nothing kept otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from kling_relay import ChecksumMismatchError, DownloadError, JobNotSucceededError

from shared.models.common import JobStatus
from tests.unit.sdk.conftest import API_KEY, VIDEO, async_client, job_json


def storage(
    job: dict, served: bytes | httpx.Response | list[bytes | httpx.Response | Exception], *, asynchronous: bool = False
):
    """The API answering with `job`, the archive's storage answering its presigned URL with `served`."""
    queue = served if isinstance(served, list) else [served]

    async def chunks(data: bytes):
        yield data

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "relay.test":
            return httpx.Response(200, json=job)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        # An iterator, as a network stream is: the SDK reads the raw stream, which a bytes body has already spent.
        return httpx.Response(200, content=chunks(item) if asynchronous else iter([item]))

    return handle


def test_the_output_is_streamed_to_the_file_and_checked(client, sleeps, tmp_path: Path) -> None:
    job = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    relay, api = client(storage(job, VIDEO))
    saved = relay.jobs.download(job["id"], tmp_path / "fox.mp4")
    assert saved == tmp_path / "fox.mp4"
    assert saved.read_bytes() == VIDEO
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fox.mp4"]
    fetched = api.requests[-1]
    assert fetched.url.host == "bucket.test"
    assert "authorization" not in fetched.headers, "the API key must never go to the storage host"
    assert API_KEY not in str(fetched.headers)


def test_a_directory_gets_a_file_named_after_the_job(client, sleeps, tmp_path: Path) -> None:
    job = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    relay, _ = client(storage(job, VIDEO))
    assert relay.jobs.download(job["id"], tmp_path) == tmp_path / f"{job['id']}.mp4"


@pytest.mark.parametrize(
    "served",
    [VIDEO[:-1] + b"\x00", VIDEO[:-10], VIDEO + b"more"],
    ids=["changed-byte", "truncated", "longer"],
)
def test_bytes_that_do_not_match_the_record_are_refused_and_nothing_is_kept(
    client, sleeps, tmp_path: Path, served: bytes
) -> None:
    job = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    relay, _ = client(storage(job, served))
    (tmp_path / "fox.mp4").write_bytes(b"an older file stays as it was")
    with pytest.raises(ChecksumMismatchError) as raised:
        relay.jobs.download(job["id"], tmp_path / "fox.mp4")
    assert raised.value.expected_sha256 == job["outputs"][0]["sha256"]
    assert raised.value.expected_bytes == len(VIDEO)
    assert raised.value.actual_sha256 != raised.value.expected_sha256
    assert [path.name for path in tmp_path.iterdir()] == ["fox.mp4"]
    assert (tmp_path / "fox.mp4").read_bytes() == b"an older file stays as it was"


def test_a_job_without_that_output_is_refused_before_any_download(client, sleeps, tmp_path: Path) -> None:
    running = job_json(JobStatus.RUNNING)
    relay, api = client(storage(running, VIDEO))
    with pytest.raises(JobNotSucceededError, match="is running") as raised:
        relay.jobs.download(running["id"], tmp_path / "x.mp4")
    assert raised.value.job.status == "running"
    done = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    relay, api = client(storage(done, VIDEO))
    with pytest.raises(JobNotSucceededError, match="no output 1"):
        relay.jobs.download(done["id"], tmp_path / "x.mp4", output=1)
    assert all(request.url.host == "relay.test" for request in api.requests)
    assert list(tmp_path.iterdir()) == []


def test_storage_failures_are_retried_and_a_refusal_is_raised(client, sleeps, tmp_path: Path) -> None:
    job = job_json(JobStatus.SUCCEEDED, video=VIDEO)
    relay, _ = client(storage(job, [httpx.Response(503), httpx.ReadError("reset"), VIDEO]))
    assert relay.jobs.download(job["id"], tmp_path / "a.mp4").read_bytes() == VIDEO
    assert len(sleeps) == 2

    relay, api = client(storage(job, httpx.Response(403, text="<Error>AccessDenied</Error>")))
    with pytest.raises(DownloadError, match="403") as raised:
        relay.jobs.download(job["id"], tmp_path / "b.mp4")
    assert raised.value.status_code == 403
    assert sum(1 for request in api.requests if request.url.host == "bucket.test") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mp4"]


def test_the_async_client_downloads_and_checks_alike(sleeps, tmp_path: Path) -> None:
    job = job_json(JobStatus.SUCCEEDED, video=VIDEO)

    async def scenario() -> None:
        relay, _ = async_client(storage(job, VIDEO, asynchronous=True))
        assert (await relay.jobs.download(job["id"], tmp_path / "ok.mp4")).read_bytes() == VIDEO
        relay, _ = async_client(storage(job, VIDEO[:-1], asynchronous=True))
        with pytest.raises(ChecksumMismatchError):
            await relay.jobs.download(job["id"], tmp_path / "bad.mp4")

    asyncio.run(scenario())
    assert [path.name for path in tmp_path.iterdir()] == ["ok.mp4"]
