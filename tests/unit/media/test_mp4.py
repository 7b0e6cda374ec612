"""A video's length from its MP4 header, whatever the order of its boxes, reading only what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.mp4 import NotMp4Error, duration_seconds, movie_header_duration
from tests.support.mp4 import box, mp4, mvhd

ASSET = Path(__file__).resolve().parents[3] / "local" / "provider_emulator" / "assets" / "motion.mp4"


class Reads:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        return self.data[offset : offset + length]


@pytest.mark.parametrize("moov_first", [True, False])
@pytest.mark.parametrize("version", [0, 1])
def test_the_length_is_read_with_moov_before_or_after_the_media(moov_first: bool, version: int) -> None:
    reads = Reads(mp4(12.5, moov_first=moov_first, media_bytes=50_000_000 // 1000, version=version))
    assert duration_seconds(reads) == 12.5
    assert len(reads.calls) <= 4  # box headers and the start of moov, never the media


def test_a_real_clip_made_by_ffmpeg() -> None:
    data = ASSET.read_bytes()
    assert duration_seconds(lambda offset, length: data[offset : offset + length]) == 4.0


def test_a_64_bit_media_box_is_stepped_over() -> None:
    data = box(b"ftyp", b"isom\x00\x00\x00\x00") + box(b"mdat", bytes(100), large=True) + box(b"moov", mvhd(7))
    assert duration_seconds(Reads(data)) == 7


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "no moov box"),
        (b"<html>not found</html>", "does not start with an MP4 box"),
        (box(b"ftyp", b"isom") + box(b"mdat", bytes(10)), "no moov box"),
        (box(b"ftyp", b"isom") + b"\x00\x00\x00\x04free", "impossible size"),
        (box(b"ftyp", b"isom") + box(b"moov", box(b"trak", bytes(8))), "no mvhd box"),
        (box(b"moov", mvhd(3, timescale=0)), "gives no duration"),
        (box(b"moov", box(b"mvhd", bytes([2]) + bytes(40))), "not understood"),
    ],
)
def test_what_is_not_a_readable_mp4_says_why(data: bytes, problem: str) -> None:
    with pytest.raises(NotMp4Error, match=problem):
        duration_seconds(Reads(data))


def test_a_moov_box_starting_with_another_child_is_searched() -> None:
    assert movie_header_duration(box(b"free", bytes(4)) + mvhd(9)) == 9
