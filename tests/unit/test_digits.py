"""Numbers in text others wrote: ASCII digits only."""

from __future__ import annotations

import pytest

from shared.digits import ascii_int


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("007", 7), (12, 12), ("9" * 18, int("9" * 18))])
def test_ascii_digits_are_read(text: str | int, number: int) -> None:
    assert ascii_int(text) == number


NOT_NUMBERS = ["", " 1", "1 ", "²", "1²", "٣", "\uff11\uff12", "-1", "+1", "1.0", "1e3", "0x10", "9" * 19]


@pytest.mark.parametrize("text", [*NOT_NUMBERS, "9" * 5000, None, -1, True])
def test_anything_else_is_no_number(text: object) -> None:
    assert ascii_int(text) is None  # type: ignore[arg-type]


def test_a_wider_limit_can_be_asked_for() -> None:
    assert ascii_int("1" * 25, max_digits=30) == int("1" * 25)
