"""Whole numbers in text someone else wrote (headers, providers' fields): ASCII digits or nothing.

`str.isdigit` accepts superscripts ('²') and other scripts' digits; `int` refuses some of them (raising where
a check was meant to prevent it) and reads others ('٣' is 3), so neither is a test for "a number we were sent".
"""

from __future__ import annotations

import re

# 18 digits hold any count this system reads (bytes, HTTP statuses, provider codes) and stay far below Python's
# limit on converting long digit strings.
MAX_DIGITS = 18
_ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_int(text: str | int | None, *, max_digits: int = MAX_DIGITS) -> int | None:
    """`text` as a non-negative integer if it is ASCII digits only (at most `max_digits`), else None.

    An int passes through when non-negative; a bool is not a number here.
    """
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text if text >= 0 else None
    if len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)
