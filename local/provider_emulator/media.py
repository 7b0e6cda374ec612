"""Result videos and sample frames served by the emulator.

`assets/base.mp4` (about 5.5 KB) is a 1 s, 160x90, 12 fps H.264 clip without audio: ffmpeg's `testsrc2`
source encoded with libx264 (`-preset veryslow -crf 35 -pix_fmt yuv420p -movflags +faststart -an`), made
once with the ffmpeg binary of the `imageio-ffmpeg` wheel. `first.png` and `last.png` are single 320x180
frames of ffmpeg's `testsrc2` and `smptebars` sources. `motion.mp4` (about 9 KB), the reference video for
motion control, is 4 s of `testsrc2` at 160x90 and 6 fps, made the same way (`-crf 40`).

Every result file is that clip followed by one MP4 `free` box whose payload names the task and output
index, so each task's bytes (and checksum) differ while the file stays a valid MP4 (players skip `free`
boxes). A requested size is reached by padding the `free` box with zeros; the padding is produced on the
fly in chunks, so a file of any size is streamed without being held in memory.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.mp4 import duration_seconds

ASSETS = Path(__file__).parent / "assets"
FRAME_NAMES: tuple[str, ...] = ("first.png", "last.png")
VIDEO_NAMES: tuple[str, ...] = ("motion.mp4",)
ASSET_NAMES: tuple[str, ...] = FRAME_NAMES + VIDEO_NAMES

_SMALL_BOX_LIMIT = 0xFFFFFFFF
_TAG_LIMIT = 240  # bytes of the task tag; keeps MIN_RESULT_BYTES a fixed number
CHUNK_BYTES = 64 * 1024
_ZEROS = bytes(CHUNK_BYTES)


@functools.cache
def base_video() -> bytes:
    data = (ASSETS / "base.mp4").read_bytes()
    if data[4:8] != b"ftyp":
        raise RuntimeError("assets/base.mp4 does not start with an MP4 ftyp box")
    return data


@functools.cache
def frame_image(name: str) -> bytes:
    if name not in FRAME_NAMES:
        raise KeyError(f"no sample frame named {name!r}; known: {', '.join(FRAME_NAMES)}")
    return (ASSETS / name).read_bytes()


@functools.cache
def asset(name: str) -> tuple[bytes, str]:
    """A sample asset's bytes and content type."""
    if name not in ASSET_NAMES:
        raise KeyError(f"no sample asset named {name!r}; known: {', '.join(ASSET_NAMES)}")
    return (ASSETS / name).read_bytes(), "video/mp4" if name in VIDEO_NAMES else "image/png"


@functools.cache
def video_seconds(name: str) -> float:
    """A sample video's length, read from its header as a provider would."""
    data, _ = asset(name)
    return duration_seconds(lambda offset, length: data[offset : offset + length])


def min_result_bytes() -> int:
    """The smallest size a padded result may be given: the clip, a large box header and the tag."""
    return len(base_video()) + 16 + _TAG_LIMIT


def _tag(task_id: str, output_index: int) -> bytes:
    return f"kling-relay emulator result; task={task_id}; output={output_index}\n".encode()[:_TAG_LIMIT]


def _free_box_header(box_size: int) -> bytes:
    if box_size <= _SMALL_BOX_LIMIT:
        return struct.pack(">I4s", box_size, b"free")
    # size 1 means "a 64-bit size follows the type" (ISO/IEC 14496-12, 4.2)
    return struct.pack(">I4sQ", 1, b"free", box_size)


@dataclass(frozen=True)
class ResultFile:
    """One task output: `head` (clip, box header, tag) followed by zero padding up to `size` bytes."""

    head: bytes
    size: int

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The bytes in [start, stop), at most CHUNK_BYTES at a time."""
        end = self.size if stop is None else min(stop, self.size)
        position = start
        while position < end:
            if position < len(self.head):
                piece = self.head[position : min(end, len(self.head), position + CHUNK_BYTES)]
            else:
                piece = _ZEROS[: min(CHUNK_BYTES, end - position)]
            yield piece
            position += len(piece)


def result_file(task_id: str, output_index: int, size: int | None = None) -> ResultFile:
    """The file for one task output; `size` pads it to exactly that many bytes."""
    base = base_video()
    tag = _tag(task_id, output_index)
    if size is None:
        box_size = 8 + len(tag)
    else:
        if size < min_result_bytes():
            raise ValueError(f"result size {size} is below the minimum of {min_result_bytes()} bytes")
        box_size = size - len(base)
    head = base + _free_box_header(box_size) + tag
    return ResultFile(head=head, size=len(base) + box_size)
