"""An S3 multipart upload fed from a stream, with a few parts in flight while the stream is read on.

Parts are sent from a small thread pool as they fill, so reading the download and sending parts overlap
(one thread alternating between them left both idle half the time). At most `in_flight` parts are being
sent and one is filling, which bounds memory at about (in_flight + 1) parts whatever the object's size.
Any failure aborts the upload after the parts in flight have settled, so no partial object is left.
"""

from __future__ import annotations

import contextvars
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from shared.observability import logger
from shared.repository.codec import error_code


class MultipartUpload:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        part_bytes: int,
        in_flight: int,
        content_type: str,
        metadata: dict[str, str],
    ) -> None:
        self.s3, self.bucket, self.key, self.part_bytes = s3, bucket, key, part_bytes
        self.in_flight = in_flight
        created = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata)
        self.upload_id: str = created["UploadId"]
        self.parts: list[dict[str, Any]] = []
        self.buffer = bytearray()
        self._numbered = 0
        self._pending: deque[Future[dict[str, Any]]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="upload-part")

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        while len(self.buffer) >= self.part_bytes:
            self._make_room()  # before the copy, so no finished part waits in memory for a free sender
            part = self.buffer[: self.part_bytes]  # the one copy each part costs
            del self.buffer[: self.part_bytes]
            self._submit(part)

    def complete(self, tags: dict[str, str]) -> None:
        if self.buffer or self._numbered == 0:
            self._make_room()
            self._submit(self.buffer)
            self.buffer = bytearray()
        while self._pending:
            self._collect()
        self._pool.shutdown()
        # Parts are collected oldest first, so `parts` is already in part-number order.
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )
        put_tags(self.s3, self.bucket, self.key, tags)

    def abort(self) -> None:
        for pending in self._pending:
            pending.cancel()
        self._pool.shutdown(wait=True)  # a part still being sent would otherwise land after the abort
        self._pending.clear()
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except ClientError as exc:
            logger.warning("abort of multipart upload failed", key=self.key, code=error_code(exc))

    def _make_room(self) -> None:
        while len(self._pending) >= self.in_flight:
            self._collect()

    def _submit(self, data: bytearray) -> None:
        self._numbered += 1
        # Each part runs in the caller's context (its runtime, log keys), as if sent from its thread.
        context = contextvars.copy_context()
        self._pending.append(self._pool.submit(context.run, self._send, self._numbered, data))

    def _collect(self) -> None:
        """Wait for the oldest part in flight; its failure is raised here, in the caller's thread."""
        self.parts.append(self._pending.popleft().result())

    def _send(self, number: int, data: bytearray) -> dict[str, Any]:
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}


def put_tags(s3: Any, bucket: str, key: str, tags: dict[str, str]) -> None:
    s3.put_object_tagging(
        Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": name, "Value": value} for name, value in tags.items()]}
    )
