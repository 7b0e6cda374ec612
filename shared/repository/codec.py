"""Pydantic models to DynamoDB attribute maps and back."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.
_SMALLEST = Decimal("1E-130")
_LARGEST = Decimal("1E+126")
_DIGITS = 38


def _number(text: str) -> Decimal:
    """A JSON float as a number DynamoDB stores: nearer zero than it can hold is 0 (a float has at most 17
    significant digits, so precision is never lost); too large to hold is an error, not a silent change."""
    value = Decimal(text)
    if value and abs(value) < _SMALLEST:
        return Decimal(0)
    if abs(value) >= _LARGEST or len(value.as_tuple().digits) > _DIGITS:
        raise ValueError(f"{text} cannot be stored as a DynamoDB number")
    return value


def number(value: float) -> str:
    """A number as DynamoDB's `N` string (floats as their shortest decimal form)."""
    return str(_number(repr(float(value)))) if isinstance(value, float) else str(int(value))


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-able values (floats as Decimal) to DynamoDB's typed attribute map."""
    return {key: _serializer.serialize(value) for key, value in values.items()}


def model_to_attributes(model: BaseModel) -> dict[str, Any]:
    # A JSON round trip turns datetimes into strings and floats into Decimals, as DynamoDB wants.
    # Unset (None) fields are left out, so `attribute_not_exists`/`if_not_exists` mean "not set".
    plain = json.loads(model.model_dump_json(exclude_none=True), parse_float=_number)
    return to_attributes(plain)


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def error_code(exc: ClientError) -> str:
    """The AWS error code of a failed call (e.g. ConditionalCheckFailedException)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
