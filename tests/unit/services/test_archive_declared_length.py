"""A result's declared Content-Length is a number only in ASCII digits: anything else is no declaration."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.models.job import ErrorCode
from shared.services import archive
from shared.services.archive import SourceError

LIMIT = 1000


def answer(length: str) -> httpx.Response:
    """An answer declaring `length`, as raw header bytes (a server may send anything)."""
    return httpx.Response(200, headers=[(b"Content-Type", b"video/mp4"), (b"Content-Length", length.encode())])


@pytest.mark.parametrize("length", ["²", "٣٠٠٠", "9" * 5000, "1e9", "-1", ""])
def test_a_length_that_is_not_ascii_digits_is_ignored_not_a_crash(length: str) -> None:
    archive._check_response(answer(length), LIMIT)  # the copy's own byte count enforces the cap


def test_a_declared_length_over_the_cap_is_refused() -> None:
    with pytest.raises(SourceError) as caught:
        archive._check_response(answer("1001"), LIMIT)
    assert caught.value.code is ErrorCode.RESULT_INVALID


@pytest.mark.parametrize(("declared", "truncated"), [("5", False), ("6", True), ("²", False), ("٦", False)])
def test_only_an_ascii_length_can_call_a_download_truncated(declared: str, truncated: bool) -> None:
    upload: Any = object()
    if truncated:
        with pytest.raises(SourceError, match="truncated"):
            archive._require_complete(upload, 5, declared)
    else:
        assert archive._require_complete(upload, 5, declared) is upload
