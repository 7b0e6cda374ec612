"""The multipart upload: parts overlap, at most `in_flight` at once, in order on completion, aborted on failure."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.gateways.archive_store import ArchiveStore, ArchiveStoreError
from shared.services.multipart import MultipartUpload

PART = 4
CALLER: ContextVar[str] = ContextVar("caller", default="unset")


class FakeS3:
    def __init__(self, barrier: threading.Barrier | None = None, fail_part: int | None = None) -> None:
        self.barrier, self.fail_part = barrier, fail_part
        self.lock = threading.Lock()
        self.active = self.most_active = 0
        self.sent: dict[int, bytes] = {}
        self.completed: list[dict[str, Any]] | None = None
        self.tags: list[dict[str, str]] | None = None
        self.aborted = False
        self.contexts: list[str] = []

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u-1"}

    def upload_part(self, *, PartNumber: int, Body: bytearray, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.barrier is not None and PartNumber <= self.barrier.parties:
                self.barrier.wait()  # breaks (and fails the test) unless that many parts are sent at once
            if PartNumber == self.fail_part:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
            self.sent[PartNumber] = bytes(Body)
            self.contexts.append(CALLER.get())
            return {"ETag": f'"etag-{PartNumber}"'}
        finally:
            with self.lock:
                self.active -= 1

    def complete_multipart_upload(self, *, MultipartUpload: dict[str, Any], **_: Any) -> None:
        self.completed = MultipartUpload["Parts"]

    def put_object_tagging(self, *, Tagging: dict[str, Any], **_: Any) -> None:
        self.tags = Tagging["TagSet"]

    def abort_multipart_upload(self, **_: Any) -> None:
        self.aborted = True


def upload(s3: FakeS3, in_flight: int) -> MultipartUpload:
    return MultipartUpload(
        ArchiveStore(s3, "bucket"), "key", part_bytes=PART, in_flight=in_flight, content_type="video/mp4", metadata={}
    )


def test_parts_are_sent_concurrently_and_completed_in_order() -> None:
    s3 = FakeS3(barrier=threading.Barrier(3, timeout=5))
    target = upload(s3, in_flight=3)
    for chunk in (b"abc", b"defgh", b"ijklmnopq", b"r"):
        target.write(chunk)
    target.complete({"sha256": "x"})
    assert s3.completed == [{"PartNumber": n, "ETag": f'"etag-{n}"'} for n in (1, 2, 3, 4, 5)]
    assert b"".join(s3.sent[n] for n in sorted(s3.sent)) == b"abcdefghijklmnopqr"
    assert s3.tags == [{"Key": "sha256", "Value": "x"}]
    assert not s3.aborted


@pytest.mark.parametrize("in_flight", [1, 2])
def test_no_more_than_in_flight_parts_are_sent_at_once(in_flight: int) -> None:
    s3 = FakeS3()
    target = upload(s3, in_flight=in_flight)
    target.write(b"x" * PART * 12)
    target.complete({})
    assert len(s3.sent) == 12
    assert s3.most_active <= in_flight


def test_parts_are_sent_in_the_callers_context() -> None:
    s3 = FakeS3()
    CALLER.set("archive of job 1")
    target = upload(s3, in_flight=2)
    target.write(b"z" * PART * 3)
    target.complete({})
    assert s3.contexts == ["archive of job 1"] * 3


def test_an_empty_body_is_one_empty_part() -> None:
    s3 = FakeS3()
    target = upload(s3, in_flight=2)
    target.complete({})
    assert s3.sent == {1: b""}


def test_a_failed_part_is_raised_to_the_writer_and_the_upload_can_be_aborted() -> None:
    s3 = FakeS3(fail_part=2)
    target = upload(s3, in_flight=2)

    def send_all() -> None:
        target.write(b"y" * PART * 8)
        target.complete({})

    with pytest.raises(ArchiveStoreError, match="UploadPart of key failed: InternalError"):
        send_all()
    target.abort()
    assert s3.aborted
    assert s3.completed is None
