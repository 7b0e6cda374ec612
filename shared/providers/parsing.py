"""Reading provider answers: lenient side fields, readable validation errors, callback bodies."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from shared.errors import CallbackRejectedError

T = TypeVar("T")


def _absent_if_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Side fields in an unknown shape read as absent rather than losing an otherwise good answer."""
    try:
        return handler(value)
    except ValidationError:
        return None


Lenient = Annotated[T | None, WrapValidator(_absent_if_invalid)]


def first_error(exc: ValidationError, default_location: str = "data") -> str:
    """`location: message` of the first problem, for error messages about a provider's answer."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or default_location
    return f"{where}: {first['msg']}"


def load_callback_json(body: bytes) -> dict[str, Any]:
    """A callback body as a JSON object, or `CallbackRejectedError`."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CallbackRejectedError("not_json") from exc
    if not isinstance(document, dict):
        raise CallbackRejectedError("not_json_object")
    return document
