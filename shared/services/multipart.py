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

from shared.gateways.archive_store import ArchiveStore, ArchiveStoreError, UploadedPart
from shared.observability import logger


class MultipartUpload:
    def __init__(
        self,
        store: ArchiveStore,
        key: str,
        *,
        part_bytes: int,
        in_flight: int,
        content_type: str,
        metadata: dict[str, str],
    ) -> None:
        self.store, self.key, self.part_bytes = store, key, part_bytes
        self.in_flight = in_flight
        self.upload_id = store.start_upload(key, content_type=content_type, metadata=metadata)
        self.parts: list[UploadedPart] = []
        self.buffer = bytearray()
        self._numbered = 0
        self._pending: deque[Future[UploadedPart]] = deque()
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
        self.store.complete_upload(self.key, self.upload_id, self.parts)
        self.store.put_tags(self.key, tags)

    def abort(self) -> None:
        for pending in self._pending:
            pending.cancel()
        self._pool.shutdown(wait=True)  # a part still being sent would otherwise land after the abort
        self._pending.clear()
        try:
            self.store.abort_upload(self.key, self.upload_id)
        except ArchiveStoreError as exc:  # the bucket's lifecycle rule removes it a day later
            logger.warning("abort of multipart upload failed", key=self.key, code=exc.aws_code)

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

    def _send(self, number: int, data: bytearray) -> UploadedPart:
        return self.store.upload_part(self.key, self.upload_id, number, data)
