"""Archiving a large video keeps memory at about one part, whatever the video's size.

The bucket lives in a separate S3 emulator process: an in-process one would hold the whole object
in this process's memory when the upload completes (real S3 keeps it on its side, too).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest

from shared.models.common import JobStatus
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime
from tests.fixtures.cloud import BUCKET, Cloud
from tests.functions.test_archive_handler import MiB, Stream, archiving_job, mp4, run, stream_server

VIDEO_BYTES = 300 * MiB
PART_BYTES = 8 * MiB
MEMORY_BOUND = 64 * MiB


@pytest.fixture
def s3_process() -> Iterator[str]:
    """An S3 emulator in its own process; its endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def generated_video() -> Iterator[bytes]:
    """VIDEO_BYTES of MP4, produced as it is sent (one 1 MiB block, reused)."""
    head = mp4(0)
    yield head
    block = bytes(range(256)) * 4096
    remaining = VIDEO_BYTES - len(head)
    while remaining > 0:
        piece = block if remaining >= len(block) else block[:remaining]
        remaining -= len(piece)
        yield piece


@pytest.mark.slow
def test_a_300_mb_video_is_archived_with_memory_bounded_well_below_its_size(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], s3_process: str
) -> None:
    s3: Any = boto3.client("s3", endpoint_url=s3_process)
    s3.create_bucket(Bucket=BUCKET)
    settings = cloud.settings.model_copy(update={"local_mode": True, "archive_part_bytes": PART_BYTES})
    install_runtime(Runtime(settings, clients={**cloud.clients, "s3": s3}, provider_http=httpx.Client()))
    expected = hashlib.sha256()
    for piece in generated_video():
        expected.update(piece)

    with stream_server(lambda attempt: Stream(generated_video, content_length=VIDEO_BYTES)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/large.mp4"])
        tracemalloc.start()
        try:
            failed = run(record)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert failed == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED, stored.error
    [output] = stored.outputs
    assert output.bytes == VIDEO_BYTES
    assert output.sha256 == expected.hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key=output.key, PartNumber=1)
    assert head["PartsCount"] == -(-VIDEO_BYTES // PART_BYTES)
    assert s3.head_object(Bucket=BUCKET, Key=output.key)["ContentLength"] == VIDEO_BYTES
    assert peak < MEMORY_BOUND, f"peak traced memory {peak / MiB:.1f} MiB"
