"""Identifiers: time-ordered job ids (ULID bodies, so newest-first listing is a key sort)."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return "".join(reversed(chars))


def new_job_id(now_ms: int | None = None) -> str:
    """`job_` + 26 chars: 48 bits of milliseconds, then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return "job_" + _base32(ms, 10) + _base32(secrets.randbits(80), 16)
