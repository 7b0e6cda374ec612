"""A video's length from its MP4/QuickTime header (ISO/IEC 14496-12), read a few ranges at a time.

Only the top-level boxes are walked, to the `moov` box, whose `mvhd` box holds the movie's timescale and
duration. Nothing else of the file is needed, so a remote file is read with a handful of small range
requests whether its `moov` box comes first (fast start) or after the media data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# Reads `length` bytes at `offset`; fewer (or none) at the end of the file.
Read = Callable[[int, int], bytes]

MAX_TOP_LEVEL_BOXES = 64
MOOV_HEAD_BYTES = 4096  # `mvhd` is the first child of `moov` in every writer in common use; this is ample
_UNKNOWN_DURATION_32 = 0xFFFFFFFF
_UNKNOWN_DURATION_64 = 0xFFFFFFFFFFFFFFFF


class NotMp4Error(ValueError):
    """The bytes are not an MP4/QuickTime file whose length can be read."""


def duration_seconds(read: Read) -> float:
    """The movie's length in seconds; `NotMp4Error` when the header does not say."""
    offset = 0
    for _ in range(MAX_TOP_LEVEL_BOXES):
        header = read(offset, 16)
        if len(header) < 8:
            raise NotMp4Error("no moov box before the end of the file")
        size, kind = struct.unpack(">I4s", header[:8])
        header_size = 8
        if size == 1:
            if len(header) < 16:
                raise NotMp4Error("truncated 64-bit box size")
            (size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        if offset == 0 and kind not in (b"ftyp", b"moov", b"free", b"skip", b"wide", b"mdat", b"pnot"):
            raise NotMp4Error(f"does not start with an MP4 box (found {kind!r})")
        if kind == b"moov":
            length = MOOV_HEAD_BYTES if size == 0 else min(MOOV_HEAD_BYTES, size - header_size)
            return movie_header_duration(read(offset + header_size, length))
        if size == 0:  # the last box, running to the end of the file
            raise NotMp4Error("no moov box before the end of the file")
        if size < header_size:
            raise NotMp4Error(f"box {kind!r} has an impossible size {size}")
        offset += size
    raise NotMp4Error(f"no moov box among the first {MAX_TOP_LEVEL_BOXES} boxes")


def movie_header_duration(moov: bytes) -> float:
    """The duration in the `mvhd` box found among the first children of a `moov` box's contents."""
    offset = 0
    while offset + 8 <= len(moov):
        size, kind = struct.unpack(">I4s", moov[offset : offset + 8])
        if kind == b"mvhd":
            return _mvhd(moov[offset + 8 : offset + size if size >= 8 else len(moov)])
        if size < 8:
            break
        offset += size
    raise NotMp4Error("no mvhd box at the start of the moov box")


def _mvhd(body: bytes) -> float:
    if not body:
        raise NotMp4Error("empty mvhd box")
    version = body[0]
    if version == 0 and len(body) >= 20:
        timescale, duration = struct.unpack(">II", body[12:20])
        unknown = duration == _UNKNOWN_DURATION_32
    elif version == 1 and len(body) >= 32:
        (timescale,) = struct.unpack(">I", body[20:24])
        (duration,) = struct.unpack(">Q", body[24:32])
        unknown = duration == _UNKNOWN_DURATION_64
    else:
        raise NotMp4Error(f"mvhd version {version} or size {len(body)} not understood")
    if timescale == 0 or unknown:
        raise NotMp4Error("the movie header gives no duration")
    return float(duration) / float(timescale)
