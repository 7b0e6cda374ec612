"""An S3 multipart upload fed from a stream, with a few parts in flight while the stream is read on.

Parts are sent from a small thread pool as they fill, so reading the download and sending parts overlap
(one thread alternating between them left both idle half the time). At most `in_flight` parts are being
sent and one is filling, which bounds memory at about (in_flight + 1) parts whatever the object's size.
Each byte is copied once, into the part it belongs to: a full part is handed to its sender as it is, and
the next one is a fresh buffer. Any failure aborts the upload after the parts in flight have settled, so
no partial object is left.
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
        self._part = bytearray(part_bytes)
        self._filled = 0
        self._numbered = 0
        self._pending: deque[Future[UploadedPart]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="upload-part")

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            taken = min(len(view), self.part_bytes - self._filled)
            self._part[self._filled : self._filled + taken] = view[:taken]  # the one copy each byte costs
            self._filled += taken
            view = view[taken:]
            if self._filled == self.part_bytes:
                self._make_room()  # before the next buffer, so no finished part waits in memory for a sender
                self._submit(self._part)
                self._part, self._filled = bytearray(self.part_bytes), 0

    def complete(self, tags: dict[str, str]) -> None:
        if self._filled or self._numbered == 0:
            del self._part[self._filled :]  # the last part is as long as what is left (in place, no copy)
            self._make_room()
            self._submit(self._part)
        self._part, self._filled = bytearray(), 0
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
