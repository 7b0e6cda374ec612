"""Characters refused in free text that reaches providers, logs and other people's screens.

C0/C1 control characters (NUL included) and the Unicode bidirectional controls can hide or reorder what a
reader sees (a prompt or metadata value that displays differently from what it is); none has a place in
a prompt or a metadata value. Tabs and line breaks are ordinary text in a prompt.
"""

from __future__ import annotations

import unicodedata

# Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), and the marks U+200E, U+200F, U+061C.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
PROMPT_WHITESPACE = frozenset("\t\n\r")


def hidden_character(value: str, *, allowed: frozenset[str] = frozenset()) -> str | None:
    """A description of the first control or bidirectional control character in `value`, or None."""
    for index, char in enumerate(value):
        if char in allowed:
            continue
        if char in BIDI_CONTROLS:
            return f"bidirectional control character U+{ord(char):04X} at position {index}"
        if unicodedata.category(char) == "Cc":
            return f"control character U+{ord(char):04X} at position {index}"
    return None


def refuse_hidden_characters(value: str, *, allowed: frozenset[str] = frozenset()) -> str:
    """`value` unchanged, or ValueError naming the character (a 422 naming the field)."""
    problem = hidden_character(value, allowed=allowed)
    if problem is not None:
        raise ValueError(f"must not contain a {problem}")
    return value
