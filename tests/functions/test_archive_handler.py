"""The archive function on moto S3 and real loopback servers: outputs, source failures, retries, idempotency."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from functions.archive import handler
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobRecord
from shared.models.request import JobRequest
from shared.repository import schema
from shared.repository.jobs import JobRepository
from shared.runtime import Runtime
from shared.services import archive
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import BUCKET, Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, stream_record
from tests.support.http_server import Received, Reply, serve

MiB = 1024 * 1024


def mp4(payload_bytes: int = 4096) -> bytes:
    """A small MP4: an `ftyp` box, then an `mdat` box holding `payload_bytes` of data."""
    ftyp = (24).to_bytes(4, "big") + b"ftyp" + b"isom" + (512).to_bytes(4, "big") + b"isomiso2"
    payload = bytes(i % 251 for i in range(payload_bytes))
    return ftyp + (8 + payload_bytes).to_bytes(4, "big") + b"mdat" + payload


VIDEO = mp4()


# -- the stream record ---------------------------------------------------------------------------------


def stored_item(cloud: Cloud, job_id: str) -> dict[str, Any]:
    """The job item exactly as DynamoDB holds it (what a stream image carries)."""
    key = {schema.PK: {"S": schema.job_pk(job_id)}, schema.SK: {"S": schema.JOB_SK}}
    item: dict[str, Any] = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    return item


def archiving_job(
    cloud: Cloud, jobs: JobRepository, urls: list[str], *, provider: str = "kie", num_outputs: int = 1
) -> tuple[JobRecord, dict[str, Any]]:
    """A job moved from `running` to `archiving` with `urls`, and the stream record of that change."""
    request = JobRequest(prompt="a red fox running through snow", provider=provider, num_outputs=num_outputs)
    job = jobs.create(build_job(provider=provider, request=request)).job
    job = jobs.transition(job, JobStatus.QUEUED, provider_task_id=f"task-{job.id}")
    job = jobs.transition(job, JobStatus.RUNNING, progress=40)
    before = stored_item(cloud, job.id)
    job = jobs.transition(job, JobStatus.ARCHIVING, result_urls=tuple(urls), progress=100)
    return job, stream_record(stored_item(cloud, job.id), before, sequence=job.version)


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the handler; the sequence numbers the stream will deliver again."""
    try:
        result = handler.lambda_handler({"Records": list(records)}, FakeContext())
    except BatchProcessingError:
        # Powertools raises when every record failed: the whole batch is retried.
        return [record["dynamodb"]["SequenceNumber"] for record in records]
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


# -- S3 inspection --------------------------------------------------------------------------------------


def object_keys(cloud: Cloud) -> list[str]:
    listed = cloud.clients["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return [entry["Key"] for entry in listed]


def open_uploads(cloud: Cloud) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = cloud.clients["s3"].list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return uploads


def sha_tag(cloud: Cloud, key: str) -> str | None:
    tags = cloud.clients["s3"].get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    return next((tag["Value"] for tag in tags if tag["Key"] == "sha256"), None)


class CallCounter:
    """Counts (and optionally breaks) calls to one method of a boto3 client."""

    def __init__(self, client: Any, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_on: set[int] = set()
        original = getattr(client, method)

        def counted(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls in self.fail_on:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, method)
            return original(**kwargs)

        monkeypatch.setattr(client, method, counted)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff waits between download attempts, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(archive, "time", SimpleNamespace(sleep=waited.append))
    return waited


@pytest.fixture
def local_rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    """Local mode: result URLs on our own loopback servers are allowed."""
    return install_runtime(cloud.runtime(httpx.Client(), local_mode=True))


# -- a raw streaming server (declared length, chunked, truncated, generated bodies) ---------------------


@dataclass
class Stream:
    chunks: Callable[[], Iterator[bytes]]
    content_length: int | None = None  # None: chunked transfer encoding
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "video/mp4"})


@dataclass
class StreamServer:
    url: str
    requests: list[str]


@contextmanager
def stream_server(script: Callable[[int], Stream]) -> Iterator[StreamServer]:
    """Answers request n (1-based) with `script(n)`, writing the body as it is generated."""
    requests: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with lock:
                requests.append(self.path)
                reply = script(len(requests))
            self.close_connection = True
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.content_length is None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(reply.content_length))
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for chunk in reply.chunks():
                    if reply.content_length is None:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    else:
                        self.wfile.write(chunk)
                if reply.content_length is None:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading (a size cap), which is what some tests want

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StreamServer(url=f"http://127.0.0.1:{server.server_address[1]}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()


def video_reply(body: bytes = VIDEO, content_type: str = "video/mp4") -> Callable[[Received], Reply]:
    def script(request: Received) -> Reply:
        return Reply(200, body, {"Content-Type": content_type})

    return script


# -- success --------------------------------------------------------------------------------------------


def test_a_small_mp4_is_archived_and_the_job_succeeds(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    with serve(video_reply()) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/results/fox.mp4"])
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.completed_at is not None
    assert stored.error is None
    [output] = stored.outputs
    key = f"jobs/tenant-a/{job.id}/output-0.mp4"
    assert output.key == key
    assert output.bytes == len(VIDEO)
    assert output.sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert output.content_type == "video/mp4"
    s3 = cloud.clients["s3"]
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    assert obj["Body"].read() == VIDEO
    assert obj["ContentType"] == "video/mp4"
    assert obj["Metadata"] == {"job-id": job.id}
    assert sha_tag(cloud, key) == output.sha256
    assert [r.path for r in server.received] == ["/results/fox.mp4"]
    assert open_uploads(cloud) == []


def test_every_result_url_becomes_an_output_in_order(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    videos = {"/a.mp4": mp4(1000), "/b.mp4": mp4(3000), "/c.mp4": mp4(2000)}

    def script(request: Received) -> Reply:
        return Reply(200, videos[request.path], {"Content-Type": "video/mp4"})

    with serve(script) as server:
        urls = [f"{server.url}{path}" for path in videos]
        job, record = archiving_job(cloud, jobs, urls, provider="pixwith", num_outputs=3)
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert [o.key for o in stored.outputs] == [f"jobs/tenant-a/{job.id}/output-{i}.mp4" for i in range(3)]
    assert [o.bytes for o in stored.outputs] == [len(v) for v in videos.values()]
    assert [o.sha256 for o in stored.outputs] == [hashlib.sha256(v).hexdigest() for v in videos.values()]
    for output, video in zip(stored.outputs, videos.values(), strict=True):
        assert cloud.clients["s3"].get_object(Bucket=BUCKET, Key=output.key)["Body"].read() == video


def test_a_body_larger_than_one_part_is_uploaded_in_parts(
    cloud: Cloud, jobs: JobRepository, cloud_runtime_parts: Runtime
) -> None:
    video = mp4(12 * MiB)
    with serve(video_reply(video)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/big.mp4"])
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    [output] = stored.outputs
    assert output.sha256 == hashlib.sha256(video).hexdigest()
    head = cloud.clients["s3"].head_object(Bucket=BUCKET, Key=output.key, PartNumber=1)
    assert head["PartsCount"] == 3  # 5 MiB + 5 MiB + the rest
    assert head["ContentLength"] == 5 * MiB


@pytest.fixture
def cloud_runtime_parts(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client(), local_mode=True, archive_part_bytes=5 * MiB))


def test_a_gzip_encoded_result_is_stored_decoded(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    def script(request: Received) -> Reply:
        return Reply(200, gzip.compress(VIDEO), {"Content-Type": "video/mp4", "Content-Encoding": "gzip"})

    with serve(script) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED, stored.error
    assert stored.outputs[0].bytes == len(VIDEO)
    assert stored.outputs[0].sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert len(server.received) == 1


def test_an_undeclared_length_within_the_cap_is_archived(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    video = mp4(3 * MiB)

    def script(attempt: int) -> Stream:
        return Stream(lambda: iter([video[i : i + 64 * 1024] for i in range(0, len(video), 64 * 1024)]))

    with stream_server(script) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/chunked.mp4"])
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(video).hexdigest()


# -- source failures ------------------------------------------------------------------------------------


def assert_failed(jobs: JobRepository, job: JobRecord, code: ErrorCode, message_part: str) -> JobRecord:
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.code is code
    assert message_part in stored.error.message
    assert stored.outputs == ()
    assert stored.completed_at is not None
    return stored


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_expired_result_url_fails_the_job_as_result_expired(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float], status: int
) -> None:
    with serve(lambda request: Reply(status, b"<Error>AccessDenied</Error>", {"Content-Type": "application/xml"})) as s:
        job, record = archiving_job(cloud, jobs, [f"{s.url}/expired.mp4"])
        assert run(record) == []
        assert len(s.received) == 1  # not retried
    assert_failed(jobs, job, ErrorCode.RESULT_EXPIRED, f"answered {status}")
    assert sleeps == []
    assert object_keys(cloud) == []


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/html; charset=utf-8", b"<html><body>Video expired</body></html>", "text/html, not a video"),
        ("application/json", b'{"error": "not found"}', "application/json, not a video"),
        ("video/mp4", b"<html><body>not a video</body></html>", "not an MP4 video"),
        ("application/octet-stream", b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "not an MP4 video"),  # WebM
        ("video/mp4", b"", "empty"),
    ],
)
def test_a_result_that_is_not_an_mp4_fails_the_job_as_result_invalid(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, content_type: str, body: bytes, message: str
) -> None:
    with serve(video_reply(body, content_type)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, message)
    assert object_keys(cloud) == []
    assert open_uploads(cloud) == []


def test_a_declared_size_over_the_cap_fails_before_any_upload(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), local_mode=True, max_video_bytes=64 * 1024))
    creates = CallCounter(cloud.clients["s3"], "create_multipart_upload", monkeypatch)
    with serve(video_reply(mp4(100 * 1024))) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/big.mp4"])
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "over the 65536 limit")
    assert creates.calls == 0
    assert object_keys(cloud) == []


def test_an_undeclared_size_over_the_cap_is_cut_off_and_the_upload_aborted(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_runtime(
        cloud.runtime(httpx.Client(), local_mode=True, max_video_bytes=12 * MiB, archive_part_bytes=5 * MiB)
    )
    creates = CallCounter(cloud.clients["s3"], "create_multipart_upload", monkeypatch)
    aborts = CallCounter(cloud.clients["s3"], "abort_multipart_upload", monkeypatch)
    sent: list[int] = []
    head = mp4(0)

    def endless() -> Iterator[bytes]:
        yield head
        block = b"\x00" * MiB
        for _ in range(64):  # 64 MiB, far past the cap; the download must stop long before
            sent.append(len(block))
            yield block

    with stream_server(lambda attempt: Stream(endless)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/endless.mp4"])
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, f"exceeds {12 * MiB} bytes")
    assert creates.calls == 1
    assert aborts.calls == 1
    assert object_keys(cloud) == []
    assert open_uploads(cloud) == []
    assert len(server.requests) == 1  # a size problem is not retried


def test_a_truncated_download_is_retried_then_fails_and_leaves_nothing(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    creates = CallCounter(cloud.clients["s3"], "create_multipart_upload", monkeypatch)
    aborts = CallCounter(cloud.clients["s3"], "abort_multipart_upload", monkeypatch)
    video = mp4(3 * MiB)  # half of it is more than one read, so an upload is open when the body breaks off

    def truncated(attempt: int) -> Stream:
        return Stream(lambda: iter([video[: len(video) // 2]]), content_length=len(video))

    with stream_server(truncated) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/cut.mp4"])
        assert run(record) == []
        assert len(server.requests) == archive.SOURCE_ATTEMPTS
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "the download failed")
    assert sleeps == [1.0, 2.0]  # exponential backoff between the three attempts
    assert creates.calls == aborts.calls == archive.SOURCE_ATTEMPTS
    assert object_keys(cloud) == []
    assert open_uploads(cloud) == []


def test_a_truncated_download_that_then_completes_succeeds(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float]
) -> None:
    video = mp4(64 * 1024)

    def flaky(attempt: int) -> Stream:
        if attempt == 1:
            return Stream(lambda: iter([video[:1000]]), content_length=len(video))
        return Stream(lambda: iter([video]), content_length=len(video))

    with stream_server(flaky) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/cut.mp4"])
        assert run(record) == []
        assert len(server.requests) == 2
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(video).hexdigest()
    assert sleeps == [1.0]
    assert object_keys(cloud) == [stored.outputs[0].key]
    assert open_uploads(cloud) == []


@pytest.mark.parametrize("first", [500, 502, 503, 429])
def test_a_transient_answer_is_retried_and_then_succeeds(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float], first: int
) -> None:
    answers = iter(
        [Reply(first, b"busy", {"Content-Type": "text/plain"}), Reply(200, VIDEO, {"Content-Type": "video/mp4"})]
    )
    with serve(lambda request: next(answers)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
        assert len(server.received) == 2
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert sleeps == [1.0]


def test_a_source_that_keeps_failing_fails_the_job_after_the_retries(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float]
) -> None:
    with serve(lambda request: Reply(503, b"down", {"Content-Type": "text/plain"})) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
        assert len(server.received) == archive.SOURCE_ATTEMPTS
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "answered 503")
    assert sleeps == [1.0, 2.0]


def test_a_stalled_download_times_out_and_is_retried(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], sleeps: list[float]
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), local_mode=True, download_timeout_seconds=0.3))
    video = mp4(2 * MiB)

    def stalls(attempt: int) -> Stream:
        def chunks() -> Iterator[bytes]:
            yield video[: MiB + 100]
            if attempt < archive.SOURCE_ATTEMPTS:
                time.sleep(1.5)
            yield video[MiB + 100 :]

        return Stream(chunks, content_length=len(video))

    with stream_server(stalls) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/slow.mp4"])
        assert run(record) == []
        assert len(server.requests) == archive.SOURCE_ATTEMPTS
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(video).hexdigest()
    assert sleeps == [1.0, 2.0]
    assert open_uploads(cloud) == []


def test_a_refused_connection_is_retried_then_fails_the_job(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job, record = archiving_job(cloud, jobs, [f"http://127.0.0.1:{port}/fox.mp4"])
    assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "the download failed")
    assert sleeps == [1.0, 2.0]


def test_a_redirect_loop_fails_the_job_instead_of_retrying_the_record(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime
) -> None:
    with serve(lambda request: Reply(302, b"", {"Location": "/again"})) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "redirect")


def test_a_body_that_does_not_decode_fails_the_job(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    def script(request: Received) -> Reply:
        return Reply(200, b"\x1f\x8b" + VIDEO, {"Content-Type": "video/mp4", "Content-Encoding": "gzip"})

    with serve(script) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_INVALID, "could not be decoded")
    assert object_keys(cloud) == []


def test_a_followed_redirect_to_the_video_is_archived(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    def script(request: Received) -> Reply:
        if request.path == "/signed":
            return Reply(302, b"", {"Location": "/storage/fox.mp4"})
        return Reply(200, VIDEO, {"Content-Type": "video/mp4"})

    with serve(script) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/signed"])
        assert run(record) == []
        assert [r.path for r in server.received] == ["/signed", "/storage/fox.mp4"]
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED


def test_one_failed_output_of_several_fails_the_job_and_keeps_no_object(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime
) -> None:
    def script(request: Received) -> Reply:
        if request.path == "/a.mp4":
            return Reply(200, VIDEO, {"Content-Type": "video/mp4"})
        return Reply(410, b"gone", {"Content-Type": "text/plain"})

    with serve(script) as server:
        job, record = archiving_job(
            cloud, jobs, [f"{server.url}/a.mp4", f"{server.url}/b.mp4"], provider="pixwith", num_outputs=2
        )
        assert run(record) == []
    assert_failed(jobs, job, ErrorCode.RESULT_EXPIRED, "answered 410")
    assert object_keys(cloud) == []


# -- our own storage failing, repeats, races ------------------------------------------------------------


def test_s3_failing_mid_upload_aborts_it_and_leaves_the_record_to_the_stream(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), local_mode=True, archive_part_bytes=5 * MiB))
    s3 = cloud.clients["s3"]
    parts = CallCounter(s3, "upload_part", monkeypatch)
    parts.fail_on = {2}
    aborts = CallCounter(s3, "abort_multipart_upload", monkeypatch)
    video = mp4(12 * MiB)
    with serve(video_reply(video)) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == [record["dynamodb"]["SequenceNumber"]]
        stored = jobs.get(job.id)
        assert stored is not None
        assert stored.status is JobStatus.ARCHIVING
        assert stored.version == job.version
        assert aborts.calls == 1
        assert object_keys(cloud) == []
        assert open_uploads(cloud) == []

        # The stream delivers the record again; this time S3 works.
        assert run(record) == []
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(video).hexdigest()
    assert s3.get_object(Bucket=BUCKET, Key=stored.outputs[0].key)["Body"].read() == video


def test_a_repeated_record_after_success_uploads_nothing(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = cloud.clients["s3"]
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    creates = CallCounter(s3, "create_multipart_upload", monkeypatch)
    with serve(video_reply()) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == []
        done = jobs.get(job.id)
        assert run(record) == []
        assert len(server.received) == 1
    assert jobs.get(job.id) == done
    assert creates.calls == 1
    versions = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert [v["Key"] for v in versions] == [f"jobs/tenant-a/{job.id}/output-0.mp4"]


def test_a_rerun_after_a_crash_before_the_job_write_reuses_the_stored_object(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = cloud.clients["s3"]
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    creates = CallCounter(s3, "create_multipart_upload", monkeypatch)
    writes = CallCounter(cloud.clients["dynamodb"], "put_item", monkeypatch)
    with serve(video_reply()) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        writes.calls, writes.fail_on = 0, {1}  # the write of `succeeded` fails once
        assert run(record) == [record["dynamodb"]["SequenceNumber"]]
        current = jobs.get(job.id)
        assert current is not None
        assert current.status is JobStatus.ARCHIVING
        assert run(record) == []
        assert len(server.received) == 1  # the second run did not download again
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert stored.outputs[0].bytes == len(VIDEO)
    assert creates.calls == 1
    versions = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert len(versions) == 1


def test_a_rerun_after_a_crash_between_completing_and_tagging_hashes_the_stored_object(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = cloud.clients["s3"]
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    creates = CallCounter(s3, "create_multipart_upload", monkeypatch)
    tagging = CallCounter(s3, "put_object_tagging", monkeypatch)
    tagging.fail_on = {1}
    with serve(video_reply()) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        assert run(record) == [record["dynamodb"]["SequenceNumber"]]
        key = object_keys(cloud)[0]
        assert sha_tag(cloud, key) is None  # completed, never tagged
        assert run(record) == []
        assert len(server.received) == 1  # the second run did not download again
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.outputs[0].sha256 == hashlib.sha256(VIDEO).hexdigest() == sha_tag(cloud, key)
    assert stored.outputs[0].bytes == len(VIDEO)
    assert creates.calls == 1
    assert len(s3.list_object_versions(Bucket=BUCKET).get("Versions", [])) == 1


def test_a_job_canceled_while_archiving_keeps_no_object_and_stays_canceled(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime
) -> None:
    holder: dict[str, JobRecord] = {}

    def cancel_then_serve(request: Received) -> Reply:
        current = jobs.get(holder["job"].id)
        assert current is not None
        jobs.transition(current, JobStatus.CANCELED)
        return Reply(200, VIDEO, {"Content-Type": "video/mp4"})

    with serve(cancel_then_serve) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        holder["job"] = job
        assert run(record) == []
        assert len(server.received) == 1
    stored = jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELED
    assert stored.outputs == ()
    assert object_keys(cloud) == []
    assert open_uploads(cloud) == []


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.CANCELED, JobStatus.FAILED])
def test_a_stale_record_for_a_job_no_longer_archiving_is_a_no_op(
    cloud: Cloud, jobs: JobRepository, local_rt: Runtime, monkeypatch: pytest.MonkeyPatch, status: JobStatus
) -> None:
    creates = CallCounter(cloud.clients["s3"], "create_multipart_upload", monkeypatch)
    with serve(video_reply()) as server:
        job, record = archiving_job(cloud, jobs, [f"{server.url}/fox.mp4"])
        current = jobs.get(job.id)
        assert current is not None
        if status is JobStatus.SUCCEEDED:
            jobs.transition(current, status, outputs=())
        else:
            jobs.transition(current, status)
        before = jobs.get(job.id)
        assert run(record) == []
        assert server.received == []
    assert jobs.get(job.id) == before
    assert creates.calls == 0
    assert object_keys(cloud) == []


def test_a_record_for_a_missing_job_is_a_no_op(cloud: Cloud, jobs: JobRepository, local_rt: Runtime) -> None:
    job, record = archiving_job(cloud, jobs, ["https://cdn.example.com/fox.mp4"])
    cloud.clients["dynamodb"].delete_item(
        TableName=TABLE, Key={schema.PK: {"S": schema.job_pk(job.id)}, schema.SK: {"S": schema.JOB_SK}}
    )
    assert run(record) == []
    assert object_keys(cloud) == []


def test_one_failing_record_in_a_batch_is_the_only_one_reported(
    cloud: Cloud, jobs: JobRepository, install_runtime: Callable[[Runtime], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), local_mode=True))
    s3 = cloud.clients["s3"]
    with serve(lambda request: Reply(200, mp4(len(request.path)), {"Content-Type": "video/mp4"})) as server:
        first, first_record = archiving_job(cloud, jobs, [f"{server.url}/first.mp4"])
        second, second_record = archiving_job(cloud, jobs, [f"{server.url}/second-longer.mp4"])
        original = s3.complete_multipart_upload

        def complete(**kwargs: Any) -> Any:
            if second.id in kwargs["Key"]:
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, "CompleteMultipartUpload")
            return original(**kwargs)

        monkeypatch.setattr(s3, "complete_multipart_upload", complete)
        second_record["dynamodb"]["SequenceNumber"] = "900"
        assert run(first_record, second_record) == ["900"]
    done, pending = jobs.get(first.id), jobs.get(second.id)
    assert done is not None
    assert pending is not None
    assert done.status is JobStatus.SUCCEEDED
    assert pending.status is JobStatus.ARCHIVING
    assert open_uploads(cloud) == []
