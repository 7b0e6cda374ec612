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


def to_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-able values (floats as Decimal) to DynamoDB's typed attribute map."""
    return {key: _serializer.serialize(value) for key, value in values.items()}


def model_to_attributes(model: BaseModel) -> dict[str, Any]:
    # A JSON round trip turns datetimes into strings and floats into Decimals, as DynamoDB wants.
    # Unset (None) fields are left out, so `attribute_not_exists`/`if_not_exists` mean "not set".
    plain = json.loads(model.model_dump_json(exclude_none=True), parse_float=Decimal)
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
