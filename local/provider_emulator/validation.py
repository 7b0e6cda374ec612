"""Strict checks of JSON request bodies. Every refusal names the field and the rule it broke.

JSON types are taken literally: `true` is not an integer, `5` is not the string `"5"`. A JSON `null`
for an optional field counts as leaving it out. Fields a provider does not document are refused, so a
misspelt field (`callbackUrl` for Kie's `callBackUrl`) shows up instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from local.provider_emulator.media import VIDEO_NAMES, video_seconds
from shared.models.request import reference_seconds_allowed

MAX_CALLBACK_URL = 2048
# The length the emulator assumes for a reference video it cannot read (one not among its own assets).
ASSUMED_REFERENCE_SECONDS = 5


class Rejection(Exception):
    """A request the provider refuses. `status` None means the provider's usual validation status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise Rejection("request body is empty; a JSON object is required")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejection(f"request body is not valid JSON ({exc})") from exc


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Fields:
    """Typed access to one JSON object; `where` prefixes field names in messages (e.g. `input.`)."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            raise Rejection(f"{where or 'request body'} must be a JSON object, got {_json_type(data)}")
        self.data: dict[str, Any] = data
        self.where = where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def only(self, allowed: Iterable[str], context: str = "") -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            suffix = f" {context}" if context else ""
            raise Rejection(f"{self.name(unknown[0])} is not an accepted field{suffix}")

    def _value(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise Rejection(f"{self.name(key)} is required")
        return value

    def _wrong_type(self, key: str, expected: str, value: object) -> Rejection:
        return Rejection(f"{self.name(key)} must be {expected}, got {_json_type(value)} {json.dumps(value)[:60]}")

    @overload
    def string(
        self,
        key: str,
        *,
        required: Literal[True],
        choices: Sequence[str] | None = None,
        max_length: int | None = None,
        non_empty: bool = True,
    ) -> str: ...

    @overload
    def string(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Sequence[str] | None = None,
        max_length: int | None = None,
        non_empty: bool = True,
    ) -> str | None: ...

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Sequence[str] | None = None,
        max_length: int | None = None,
        non_empty: bool = True,
    ) -> str | None:
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            expected = "a string" if choices is None else "a string, one of " + ", ".join(f'"{c}"' for c in choices)
            raise self._wrong_type(key, expected, value)
        if non_empty and not value.strip():
            raise Rejection(f"{self.name(key)} must not be empty")
        if choices is not None and value not in choices:
            raise Rejection(f"{self.name(key)} must be one of {', '.join(choices)}; got {value!r}")
        if max_length is not None and len(value) > max_length:
            raise Rejection(f"{self.name(key)} is {len(value)} characters; the maximum is {max_length}")
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._wrong_type(key, "a boolean", value)
        return value

    @overload
    def integer(
        self,
        key: str,
        *,
        required: Literal[True],
        choices: Sequence[int] | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int: ...

    @overload
    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Sequence[int] | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None: ...

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Sequence[int] | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._value(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an integer" if choices is None else "an integer, one of " + ", ".join(map(str, choices))
            raise self._wrong_type(key, expected, value)
        if choices is not None and value not in choices:
            raise Rejection(f"{self.name(key)} must be one of {', '.join(map(str, choices))}; got {value}")
        if minimum is not None and value < minimum:
            raise Rejection(f"{self.name(key)} must be at least {minimum}; got {value}")
        if maximum is not None and value > maximum:
            raise Rejection(f"{self.name(key)} must be at most {maximum}; got {value}")
        return value

    def number(self, key: str, *, minimum: float, maximum: float) -> float | None:
        value = self._value(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong_type(key, "a number", value)
        if not minimum <= value <= maximum:
            raise Rejection(f"{self.name(key)} must be between {minimum} and {maximum}; got {value}")
        return float(value)

    def url(self, key: str, *, required: bool = False, max_length: int = MAX_CALLBACK_URL) -> str | None:
        value = self.string(key, required=required, max_length=max_length)
        if value is not None and not is_http_url(value):
            raise Rejection(f"{self.name(key)} must be an absolute http(s) URL; got {value[:80]!r}")
        return value

    def url_list(self, key: str, *, required: bool = False, min_items: int = 1, max_items: int = 1) -> list[str] | None:
        value = self._value(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong_type(key, "an array of URL strings", value)
        if not min_items <= len(value) <= max_items:
            wanted = str(min_items) if min_items == max_items else f"{min_items} to {max_items}"
            raise Rejection(f"{self.name(key)} must hold {wanted} URL(s); got {len(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not is_http_url(item):
                raise Rejection(f"{self.name(key)}[{index}] must be an absolute http(s) URL string")
        return list(value)

    @overload
    def object(self, key: str, *, required: Literal[True]) -> Fields: ...

    @overload
    def object(self, key: str, *, required: bool = False) -> Fields | None: ...

    def object(self, key: str, *, required: bool = False) -> Fields | None:
        value = self._value(key, required)
        if value is None:
            return None
        return Fields(value, self.name(key))


def lenient_prompt(body: object, *path: str) -> str | None:
    """The prompt of a body that may be invalid, for fault matching before validation."""
    node: object = body
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def check_reference_video(url: str, orientation: str) -> int:
    """A motion control reference video's whole seconds, refused outside the documented length rule.

    The emulator reads only its own sample videos (`/assets/...`); any other video is taken to be
    `ASSUMED_REFERENCE_SECONDS` long, as the emulator does not fetch from the outside.
    """
    path = urlsplit(url).path
    name = path.rsplit("/assets/", 1)[-1] if "/assets/" in path else ""
    if name not in VIDEO_NAMES:
        return ASSUMED_REFERENCE_SECONDS
    seconds = video_seconds(name)
    low, high = reference_seconds_allowed("video" if orientation == "video" else "image")
    if not low <= seconds <= high:
        rule = f"with character_orientation {orientation!r} it must be {low}-{high} s"
        raise Rejection(f"the reference video is {seconds:g} s; {rule}")
    return max(1, round(seconds))
