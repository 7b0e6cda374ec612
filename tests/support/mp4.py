"""Small MP4 files built box by box, to read lengths from without shipping binaries."""

from __future__ import annotations

import struct


def box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1: a 64-bit size follows the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mvhd(seconds: float, *, timescale: int = 1000, version: int = 0) -> bytes:
    duration = round(seconds * timescale)
    if version == 1:
        return box(b"mvhd", bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, timescale, duration) + bytes(80))
    return box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80))


def mp4(seconds: float, *, moov_first: bool = True, media_bytes: int = 1000, version: int = 0) -> bytes:
    """An MP4 of `seconds` (per its movie header) with `media_bytes` of media data, `moov` first or last."""
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    moov = box(b"moov", mvhd(seconds, version=version) + box(b"trak", bytes(64)))
    mdat = box(b"mdat", bytes(media_bytes))
    return ftyp + moov + mdat if moov_first else ftyp + mdat + moov
