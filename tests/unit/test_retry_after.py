"""`Retry-After` is someone else's header: every value reads as seconds or as no advice, never an error."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from shared.providers.base import retry_after_seconds as provider_retry_after
from shared.retry_after import retry_after_seconds

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 120 ", 120.0),
        ("007", 7.0),
        ("Sun, 01 Mar 2026 12:01:30 GMT", 90.0),
        ("Sunday, 01-Mar-26 12:00:10 GMT", 10.0),  # RFC 850, still accepted by HTTP
        ("Sun Mar  1 12:00:05 2026", 5.0),  # asctime
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # already past
    ],
)
def test_delta_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
        "\u00b9\u00b2\u00b3",
        "\u0663\u0660",  # Arabic-Indic digits
        "\uff13\uff10",  # fullwidth digits
        "-5",
        "1.5",
        "1e3",
        "+30",
        "30s",
        "9" * 13,  # more digits than any wait worth honouring
        "tomorrow",
        "Sun, 32 Mar 2026 12:00:00 GMT",
        "Sun, 01 Mar 99999 12:00:00 GMT",
        "x" * 10_000,
        "\x00",
    ],
)
def test_anything_else_is_no_advice(value: str | None) -> None:
    assert retry_after_seconds(value, now=NOW) is None


def test_the_provider_adapters_read_it_the_same_way() -> None:
    assert provider_retry_after("\u00b2") is None
    assert provider_retry_after("45") == 45.0
    response = httpx.Response(429, headers=[(b"Retry-After", b"\xb2")])  # the byte as it comes off the wire
    assert response.headers["Retry-After"] == "\u00b2"
    assert provider_retry_after(response.headers.get("Retry-After")) is None
