"""Request validation (a method's RequestValidator): required parameters, then the body against its model."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from local.aws.apigateway.definition import Method
from local.aws.apigateway.messages import HttpRequest
from local.aws.apigateway.responses import GatewayError

DEFAULT_CONTENT_TYPE = "application/json"  # what API Gateway assumes when a request names none
DEFAULT_MODEL_KEY = "$default"


def _present(request: HttpRequest, path_parameters: dict[str, str], location: str, name: str) -> bool:
    if location in ("header", "multivalueheader"):
        return bool(request.header_values(name))
    if location in ("querystring", "multivaluequerystring"):
        return bool(request.query_values(name))
    return bool(path_parameters.get(name))


def check_parameters(method: Method, request: HttpRequest, path_parameters: dict[str, str]) -> None:
    missing = [
        parameter.name
        for parameter in method.parameters
        if parameter.required and not _present(request, path_parameters, parameter.location, parameter.name)
    ]
    if missing:
        raise GatewayError("BAD_REQUEST_PARAMETERS", f"Missing required request parameters: [{', '.join(missing)}]")


def model_for(method: Method, content_type: str | None) -> dict[str, Any] | None:
    """The schema for the request's content type, else the `$default` model; None: the body is not checked."""
    wanted = content_type or DEFAULT_CONTENT_TYPE
    return method.models.get(wanted, method.models.get(DEFAULT_MODEL_KEY))


def _parse(text: str) -> Any:
    """The body as JSON. Integers past Python's digit limit are read as decimals (API Gateway's validator has
    no such limit, so the function still sees them); nesting past the recursion limit is an invalid body."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        return json.loads(text, parse_int=Decimal)


def check_body(method: Method, request: HttpRequest) -> None:
    schema = model_for(method, request.content_type)
    if schema is None:
        return
    try:
        document = _parse(request.body.decode("utf-8")) if request.body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError("BAD_REQUEST_BODY", "Invalid request body", validation_error=f"[{exc}]") from exc
    except RecursionError as exc:
        raise GatewayError("BAD_REQUEST_BODY", "Invalid request body", validation_error="[nested too deeply]") from exc
    errors = sorted(Draft4Validator(schema).iter_errors(document), key=lambda error: list(error.path))
    if errors:
        details = ", ".join(
            f"{'/'.join(str(part) for part in error.path) or 'body'}: {error.message}" for error in errors
        )
        raise GatewayError("BAD_REQUEST_BODY", "Invalid request body", validation_error=f"[{details}]")


def validate(method: Method, request: HttpRequest, path_parameters: dict[str, str]) -> None:
    if method.validate_parameters:
        check_parameters(method, request, path_parameters)
    if method.validate_body:
        check_body(method, request)
