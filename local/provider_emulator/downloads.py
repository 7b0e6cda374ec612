"""Result downloads from the emulator's "CDN": `GET /cdn/<provider>/<file key>/output-<n>.mp4`.

No auth, like a provider's CDN link. Single byte ranges are honoured (`Range: bytes=a-b`, `a-`, `-n`);
other `Range` forms are ignored and the whole file is sent.
A HEAD answers the headers only and takes no faults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from local.provider_emulator.engine import Engine
from local.provider_emulator.faults import DownloadSlowFault, DownloadTruncatedFault, ResultExpiredFault
from local.provider_emulator.media import ResultFile, result_file
from local.provider_emulator.tasks import Phase

_FILE_NAME = re.compile(r"^output-(\d{1,2})\.mp4$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

_CDN_ERRORS = {
    403: ("AccessDenied", "Request has expired"),
    404: ("NoSuchKey", "The specified key does not exist."),
    416: ("InvalidRange", "The requested range is not satisfiable"),
}


@dataclass(frozen=True)
class CdnError:
    status: int
    headers: dict[str, str]

    @property
    def body(self) -> bytes:
        code, message = _CDN_ERRORS[self.status]
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
        return xml.encode()


@dataclass(frozen=True)
class DownloadPlan:
    status: int  # 200 or 206
    file: ResultFile
    start: int
    stop: int  # exclusive
    headers: dict[str, str]
    bytes_per_second: int | None = None
    truncate_after: int | None = None  # body bytes to send before closing the connection


def plan_download(engine: Engine, path: str, range_header: str | None, *, head: bool) -> DownloadPlan | CdnError:
    parts = path.split("/")
    if len(parts) != 5 or parts[1] != "cdn":
        return CdnError(404, {})
    _, _, provider, file_key, name = parts
    match = _FILE_NAME.match(name)
    task = engine.by_file(file_key)
    if match is None or task is None or task.provider != provider:
        return CdnError(404, {})
    index = int(match.group(1))
    snapshot = engine.snapshot(task)
    if snapshot.phase is not Phase.SUCCEEDED or index >= task.num_outputs:
        return CdnError(404, {})

    if not head:
        engine.count(task.provider, "downloads")
        engine.note_download(task)
        engine.pause_for_latency(task.provider, task.prompt, "download")
        expired = engine.faults.take(ResultExpiredFault, task.provider, task.prompt)
        if expired is not None:
            return CdnError(expired.status, {})

    file = result_file(task.task_id, index, task.result_bytes)
    headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": f'"{task.file_key}-{index}"'}
    start, stop, status = 0, file.size, 200
    if range_header is not None and _RANGE.match(range_header.strip()):  # other forms are ignored
        byte_range = _parse_range(range_header, file.size)
        if byte_range is None:
            return CdnError(416, {"Content-Range": f"bytes */{file.size}"})
        start, stop = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{file.size}"
    headers["Content-Length"] = str(stop - start)
    if head:
        return DownloadPlan(status, file, start, stop, headers)

    slow = engine.faults.take(DownloadSlowFault, task.provider, task.prompt)
    truncated = engine.faults.take(DownloadTruncatedFault, task.provider, task.prompt)
    return DownloadPlan(
        status,
        file,
        start,
        stop,
        headers,
        bytes_per_second=None if slow is None else slow.bytes_per_second,
        truncate_after=None if truncated is None else truncated.after_bytes,
    )


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """[start, stop) of a single `bytes=` range, or None when it cannot be satisfied."""
    match = _RANGE.match(value.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        return None if suffix == 0 else (max(0, size - suffix), size)
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if start >= size or stop <= start:
        return None
    return start, stop
