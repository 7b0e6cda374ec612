"""Motion control at admission: the reference video's length, read from its header, and the rules on it.

Kling 2.6 motion control takes a reference video of 3-10 s when the character keeps the image's
orientation and 3-30 s when it follows the video's; the output is as long as the reference, and the
providers bill by that length. Where the relay can read the length (an MP4 or QuickTime file it may fetch,
whose header it reads with a few small range requests through the URL guard), a video outside the rule is
refused with a 422 before anything is recorded or paid for, and the length is kept on the request
(`motion_control.video_seconds`) for the job's cost. Where it cannot (another container, a server that
does not answer, a header beyond reach), nothing is refused: the provider applies its own rule.
"""

from __future__ import annotations

import re
import time

import httpx

from shared.errors import ValidationFailedError
from shared.models.request import JobRequest, reference_seconds_allowed
from shared.mp4 import NotMp4Error, duration_seconds
from shared.observability import logger
from shared.runtime import Runtime

CHUNK_BYTES = 64 * 1024
MAX_READS = 6
PROBE_SECONDS = 8.0  # all reads together; a slow host costs the request this at most
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ProbeFailedError(Exception):
    """The reference video could not be read far enough to know its length."""


def measure_reference(rt: Runtime, request: JobRequest) -> JobRequest:
    """The request with the reference video's measured length; a 422 when that length breaks the rule."""
    motion = request.motion_control
    if motion is None:
        return request
    url = str(motion.video_url)
    try:
        seconds: float | None = round(probe_seconds(rt, url), 2)
    except ProbeFailedError as exc:
        logger.info("reference video length unknown; the provider will check it", reason=str(exc))
        seconds = None
    if seconds is not None:
        low, high = reference_seconds_allowed(motion.character_orientation)
        if not low <= seconds <= high:
            message = (
                f"motion_control.video_url: the reference video is {seconds:g} s; with character_orientation "
                f"{motion.character_orientation!r} it must be {low}-{high} s"
            )
            raise ValidationFailedError(
                message,
                details=[{"field": "motion_control.video_url", "type": "reference_duration", "message": message}],
            )
    return request.model_copy(update={"motion_control": motion.model_copy(update={"video_seconds": seconds})})


def probe_seconds(rt: Runtime, url: str) -> float:
    """The length of the video at `url` from its MP4/QuickTime header."""
    http = rt.outbound_http(timeout=PROBE_SECONDS, follow_redirects=False)
    try:
        reader = RangeReader(http, url, deadline=time.monotonic() + PROBE_SECONDS)
        return duration_seconds(reader.read)
    except NotMp4Error as exc:
        raise ProbeFailedError(str(exc)) from exc
    except (httpx.HTTPError, ValidationFailedError) as exc:  # the URL guard refuses with ValidationFailedError
        raise ProbeFailedError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        http.close()


class RangeReader:
    """Reads byte ranges of a remote file, a chunk per request, within a request count and a deadline."""

    def __init__(self, http: httpx.Client, url: str, *, deadline: float) -> None:
        self.http = http
        self.url = url
        self.deadline = deadline
        self.reads = 0
        self.start = 0
        self.data = b""
        self.size: int | None = None

    def read(self, offset: int, length: int) -> bytes:
        end = offset + length if self.size is None else min(offset + length, self.size)
        if offset >= end:
            return b""
        if not (self.start <= offset and end <= self.start + len(self.data)):
            self._fetch(offset)
        begin = offset - self.start
        return self.data[begin : begin + length]

    def _fetch(self, offset: int) -> None:
        if self.reads >= MAX_READS or time.monotonic() > self.deadline:
            raise ProbeFailedError(f"the header was not found within {self.reads} reads")
        self.reads += 1
        headers = {"Range": f"bytes={offset}-{offset + CHUNK_BYTES - 1}", "Accept-Encoding": "identity"}
        with self.http.stream("GET", self.url, headers=headers) as response:
            if response.status_code == 416:  # nothing at or after `offset`
                self.start, self.data, self.size = offset, b"", offset
                return
            if response.status_code == 206:
                self.start = self._range_start(response, offset)
            elif response.status_code == 200 and offset == 0:
                self.start = 0  # ranges not supported: the file's first chunk is all there is to read
            else:
                raise ProbeFailedError(f"HTTP {response.status_code} reading bytes from {offset}")
            self.data = _first_bytes(response, CHUNK_BYTES)
            if response.status_code == 200:
                self.size = len(self.data) if len(self.data) < CHUNK_BYTES else None

    def _range_start(self, response: httpx.Response, asked: int) -> int:
        found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if found is None:
            raise ProbeFailedError("a partial answer without a usable Content-Range")
        start, _, total = found.groups()
        if total != "*":
            self.size = int(total)
        if int(start) != asked:
            raise ProbeFailedError(f"asked for bytes from {asked}, got bytes from {start}")
        return asked


def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        total += len(chunk)
        if total >= limit:
            break
    return b"".join(chunks)[:limit]
