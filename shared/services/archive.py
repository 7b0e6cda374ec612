"""Copying a finished job's videos from the provider into our bucket.

Each result URL is streamed into an S3 multipart upload part by part, so memory stays at about
one part whatever the video's size; its SHA-256 is computed on the way and stored as an object
tag. A failed upload is aborted (no partial object). A second run finds the tagged objects and
uploads nothing again. Source problems (expired URL, not a video, too large) fail the job with a
clear error; our own storage problems are raised so the stream retries the record.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import ClientError

from shared.errors import UnsafeUrlError
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobError, JobRecord, StoredOutput
from shared.observability import logger
from shared.repository.codec import error_code
from shared.runtime import Runtime
from shared.services.tracking import Change, Decision, settle

CONTENT_TYPE = "video/mp4"
ACCEPTED_TYPES = ("video/", "application/octet-stream", "binary/octet-stream", "application/mp4")
SHA256_TAG = "sha256"
SOURCE_ATTEMPTS = 3
GONE_STATUSES = (401, 403, 404, 410)


class SourceError(Exception):
    """The provider's result cannot be archived; `code` says why."""

    def __init__(self, code: ErrorCode, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Uploaded:
    bytes: int
    sha256: str


def output_key(job: JobRecord, index: int) -> str:
    return f"jobs/{job.tenant_id}/{job.id}/output-{index}.mp4"


class S3Upload:
    """One multipart upload: parts are sent as they fill; abort on any failure."""

    def __init__(self, s3: Any, bucket: str, key: str, part_bytes: int, job_id: str) -> None:
        self.s3, self.bucket, self.key, self.part_bytes = s3, bucket, key, part_bytes
        created = s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=CONTENT_TYPE, Metadata={"job-id": job_id}
        )
        self.upload_id: str = created["UploadId"]
        self.parts: list[dict[str, Any]] = []
        self.buffer = bytearray()

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        while len(self.buffer) >= self.part_bytes:
            self._send(bytes(self.buffer[: self.part_bytes]))
            del self.buffer[: self.part_bytes]

    def _send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self, sha256: str) -> None:
        if self.buffer or not self.parts:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )
        self.s3.put_object_tagging(
            Bucket=self.bucket, Key=self.key, Tagging={"TagSet": [{"Key": SHA256_TAG, "Value": sha256}]}
        )

    def abort(self) -> None:
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except ClientError as exc:
            logger.warning("abort of multipart upload failed", key=self.key, code=error_code(exc))


def stream_to_s3(rt: Runtime, http: httpx.Client, url: str, job: JobRecord, key: str) -> Uploaded:
    settings = rt.settings

    def open_upload() -> S3Upload:
        return S3Upload(rt.client("s3"), settings.bucket_name, key, settings.archive_part_bytes, job.id)

    try:
        with http.stream("GET", url) as response:
            _check_response(response, settings.max_video_bytes)
            return _copy(response, open_upload, settings.max_video_bytes)
    except httpx.TimeoutException as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, "the download timed out", transient=True) from exc
    except httpx.TransportError as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the download failed: {exc}", transient=True) from exc
    except httpx.TooManyRedirects as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, "the result URL redirected too often") from exc
    except httpx.DecodingError as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result could not be decoded: {exc}") from exc
    except UnsafeUrlError as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result URL is not allowed: {exc.message}") from exc


def _copy(response: httpx.Response, open_upload: Callable[[], S3Upload], max_bytes: int) -> Uploaded:
    """Body to a multipart upload, hashing on the way; the upload is aborted if anything fails."""
    upload: S3Upload | None = None
    digest = hashlib.sha256()
    total = 0
    try:
        for chunk in response.iter_bytes(chunk_size=1024 * 1024):
            if upload is None:
                _require_mp4(chunk)
                upload = open_upload()
            total += len(chunk)
            _require_within(total, max_bytes)
            digest.update(chunk)
            upload.write(chunk)
        # Content-Length counts the bytes on the wire, which differ from the decoded body under Content-Encoding.
        upload = _require_complete(upload, response.num_bytes_downloaded, response.headers.get("Content-Length"))
        upload.complete(digest.hexdigest())
    except BaseException:
        if upload is not None:
            upload.abort()
        raise
    return Uploaded(bytes=total, sha256=digest.hexdigest())


def _require_mp4(head: bytes) -> None:
    if len(head) < 8 or head[4:8] != b"ftyp":
        raise SourceError(ErrorCode.RESULT_INVALID, "the result is not an MP4 video")


def _require_within(total: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result exceeds {max_bytes} bytes")


def _require_complete(upload: S3Upload | None, received: int, declared: str | None) -> S3Upload:
    if upload is None:
        raise SourceError(ErrorCode.RESULT_INVALID, "the result is empty")
    if declared is not None and declared.isdigit() and int(declared) != received:
        raise SourceError(ErrorCode.RESULT_INVALID, "the download was truncated", transient=True)
    return upload


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    status = response.status_code
    if status in GONE_STATUSES:
        raise SourceError(ErrorCode.RESULT_EXPIRED, f"the provider's result URL answered {status} (expired or gone)")
    if 300 <= status < 400:
        raise SourceError(ErrorCode.RESULT_INVALID, "the result URL redirected too often")
    if status >= 500 or status == 429:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result URL answered {status}", transient=True)
    if status >= 400:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result URL answered {status}")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(ACCEPTED_TYPES):
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result is {content_type}, not a video")
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result is {declared} bytes, over the {max_bytes} limit")


def existing_output(rt: Runtime, key: str) -> Uploaded | None:
    """An object a previous run finished (it carries its checksum tag), or None."""
    s3 = rt.client("s3")
    try:
        head = s3.head_object(Bucket=rt.settings.bucket_name, Key=key)
        tags = s3.get_object_tagging(Bucket=rt.settings.bucket_name, Key=key)["TagSet"]
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    sha = next((t["Value"] for t in tags if t["Key"] == SHA256_TAG), None)
    return Uploaded(bytes=int(head["ContentLength"]), sha256=sha) if sha else None


def archive_one(rt: Runtime, http: httpx.Client, job: JobRecord, index: int, url: str) -> StoredOutput:
    key = output_key(job, index)
    done = existing_output(rt, key)
    delay = 1.0
    attempt = 1
    while done is None:
        try:
            done = stream_to_s3(rt, http, url, job, key)
        except SourceError as exc:
            if not exc.transient or attempt >= SOURCE_ATTEMPTS:
                raise
            logger.info("result download failed; retrying", job_id=job.id, attempt=attempt, reason=exc.message)
            time.sleep(delay)
            delay *= 2
            attempt += 1
    return StoredOutput(key=key, bytes=done.bytes, sha256=done.sha256, content_type=CONTENT_TYPE)


def archive_job(rt: Runtime, job_id: str) -> JobRecord | None:
    """Archive a job in `archiving`; anything else is a stale or repeated trigger and is skipped."""
    rt.require("bucket_name")
    job = rt.jobs.get(job_id)
    if job is None or job.status is not JobStatus.ARCHIVING:
        return job
    http = rt.outbound_http(timeout=rt.settings.download_timeout_seconds, follow_redirects=True)
    try:
        outputs = [archive_one(rt, http, job, i, url) for i, url in enumerate(job.result_urls)]
    except SourceError as exc:
        error = JobError(code=exc.code, message=exc.message)
        failed = settle(rt.jobs, job, _fail_archive(error))
        if failed.status is not JobStatus.SUCCEEDED:
            # Outputs stored before the one that failed (now or in an earlier run) would never be shown.
            _remove(rt, [output_key(job, i) for i in range(len(job.result_urls))])
        return failed
    finally:
        http.close()

    def decide(current: JobRecord) -> Change | None:
        if current.status is not JobStatus.ARCHIVING:
            return None
        return Change(JobStatus.SUCCEEDED, {"outputs": tuple(outputs)})

    stored = settle(rt.jobs, job, decide)
    if stored.status is not JobStatus.SUCCEEDED:
        _remove(rt, [o.key for o in outputs])  # canceled or failed meanwhile: keep nothing it will never show
    return stored


def _fail_archive(error: JobError) -> Decision:
    def decide(current: JobRecord) -> Change | None:
        return Change(JobStatus.FAILED, {"error": error}) if current.status is JobStatus.ARCHIVING else None

    return decide


def _remove(rt: Runtime, keys: list[str]) -> None:
    s3 = rt.client("s3")
    for key in keys:
        s3.delete_object(Bucket=rt.settings.bucket_name, Key=key)
