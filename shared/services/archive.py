"""Copying a finished job's videos from the provider into our bucket.

Each result URL is streamed into an S3 multipart upload (a few parts in flight while the download is
read on), so memory stays at a few parts whatever the video's size; its SHA-256 is computed on the way
and stored as an object tag. A failed upload is aborted (no partial object). A second run finds the
stored objects and uploads nothing again. Source problems (expired URL, not a video, too large) fail
the job with a clear error; our own storage problems are raised so the stream retries the record.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from shared.digits import ascii_int
from shared.errors import UnsafeUrlError
from shared.gateways.archive_store import ArchiveStore
from shared.models.common import JobStatus
from shared.models.job import ErrorCode, JobError, JobRecord, StoredOutput
from shared.observability import logger
from shared.runtime import Runtime
from shared.services.multipart import MultipartUpload
from shared.services.transitions import Change, Decision, settle

CONTENT_TYPE = "video/mp4"
ACCEPTED_TYPES = ("video/", "application/octet-stream", "binary/octet-stream", "application/mp4")
SHA256_TAG = "sha256"
SOURCE_ATTEMPTS = 3
MP4_SIGNATURE_BYTES = 8  # an MP4 starts with a box header: 4 bytes of size, then `ftyp`
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


def stream_to_s3(rt: Runtime, http: httpx.Client, url: str, job: JobRecord, key: str) -> Uploaded:
    settings = rt.settings

    def open_upload() -> MultipartUpload:
        return MultipartUpload(
            rt.archive_store,
            key,
            part_bytes=settings.archive_part_bytes,
            in_flight=settings.archive_parts_in_flight,
            content_type=CONTENT_TYPE,
            metadata={"job-id": job.id},
        )

    try:
        with http.stream("GET", url) as response:
            _check_response(response, settings.max_video_bytes)
            return _copy(response, open_upload, settings.max_video_bytes)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result URL cannot be fetched: {exc}") from exc
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


def _copy(response: httpx.Response, open_upload: Callable[[], MultipartUpload], max_bytes: int) -> Uploaded:
    """Body to a multipart upload, hashing on the way; the upload is aborted if anything fails.

    The body is taken in the pieces it arrives in (re-chunking it would copy every byte twice more); the
    upload is only started once its first bytes show an MP4.
    """
    upload: MultipartUpload | None = None
    head = bytearray()
    digest = hashlib.sha256()
    total = 0
    try:
        for piece in response.iter_bytes():
            chunk = piece
            if upload is None:
                head += piece
                if len(head) < MP4_SIGNATURE_BYTES:
                    continue
                _require_mp4(head)
                upload = open_upload()
                chunk, head = bytes(head), bytearray()
            total += len(chunk)
            _require_within(total, max_bytes)
            digest.update(chunk)
            upload.write(chunk)
        if upload is None and head:
            _require_mp4(head)  # a body shorter than an MP4's first box header
        # Content-Length counts the bytes on the wire, which differ from the decoded body under Content-Encoding.
        upload = _require_complete(upload, response.num_bytes_downloaded, response.headers.get("Content-Length"))
        upload.complete({SHA256_TAG: digest.hexdigest()})
    except BaseException:
        if upload is not None:
            upload.abort()
        raise
    return Uploaded(bytes=total, sha256=digest.hexdigest())


def _require_mp4(head: bytes | bytearray) -> None:
    if len(head) < MP4_SIGNATURE_BYTES or head[4:8] != b"ftyp":
        raise SourceError(ErrorCode.RESULT_INVALID, "the result is not an MP4 video")


def _require_within(total: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result exceeds {max_bytes} bytes")


def _require_complete(upload: MultipartUpload | None, received: int, declared: str | None) -> MultipartUpload:
    if upload is None:
        raise SourceError(ErrorCode.RESULT_INVALID, "the result is empty")
    length = ascii_int(declared)
    if length is not None and length != received:
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
    length = ascii_int(declared)
    if length is not None and length > max_bytes:
        raise SourceError(ErrorCode.RESULT_INVALID, f"the result is {declared} bytes, over the {max_bytes} limit")


def existing_output(rt: Runtime, key: str) -> Uploaded | None:
    """An object a previous run stored, or None.

    Only a download that passed every check is ever completed into an object, so an object without its
    checksum tag is a run that stopped between completing and tagging: it is hashed from S3 and tagged
    rather than downloaded and stored a second time.
    """
    store = rt.archive_store
    stored = store.stored(key)
    if stored is None:
        return None
    sha = stored.tags.get(SHA256_TAG)
    if sha is None:
        sha = _hash_stored(store, key, stored.version_id)
        store.put_tags(key, {SHA256_TAG: sha})
        logger.info("tagged an output a previous run stored", key=key)
    return Uploaded(bytes=stored.bytes, sha256=sha)


def _hash_stored(store: ArchiveStore, key: str, version: str | None) -> str:
    digest = hashlib.sha256()
    for chunk in store.read(key, version_id=version):
        digest.update(chunk)
    return digest.hexdigest()


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
    for key in keys:
        rt.archive_store.delete(key)
