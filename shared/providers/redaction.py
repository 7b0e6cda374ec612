"""Provider answers made safe to store, show and commit: keys, tokens, signatures and signed URL queries removed.

Used for the unrecognised answers recorded on jobs and for the fixtures `kling-relay probe --record` writes.
A field whose name says it holds a secret loses its value; every URL inside any string (JSON text nested in
JSON included) loses its query, where signed URLs keep their signatures; `Bearer` credentials and any
literal secret the caller names are replaced wherever they appear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
SENSITIVE_NAME = re.compile(
    r"(api[-_]?key|apikey|secret|token|signature|password|passwd|authori[sz]ation|credential|cookie|hmac"
    r"|x-amz-|^key$|[-_]key$)",
    re.IGNORECASE,
)
URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>\\]+)\?[^\s#\"'<>\\]*")
BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
EXCERPT_CHARS = 4000


def sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = URL_QUERY.sub(rf"\1?{REDACTED}", text)
    return BEARER.sub(rf"\1{REDACTED}", text)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON value with every secret-bearing part replaced."""
    known = tuple(secrets)
    if isinstance(value, dict):
        return {
            key: REDACTED if sensitive_name(str(key)) and item not in (None, "") else redact(item, known)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, known) for item in value]
    if isinstance(value, str):
        return redact_text(value, known)
    return value


def answer_excerpt(body: bytes, secrets: Iterable[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """A provider answer body as redacted text, JSON kept as JSON, cut to `limit` characters."""
    known = tuple(secrets)
    try:
        text = json.dumps(redact(json.loads(body), known), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):  # not JSON (or not UTF-8): redact it as text
        text = redact_text(body.decode("utf-8", errors="replace"), known)
    return text if len(text) <= limit else text[: limit - 1] + "…"
