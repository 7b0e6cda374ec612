"""What the HTTP functions share: the error shape, status mapping, and reading the event."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.errors import (
    BadRequestError,
    ConfigurationError,
    ProviderUnavailableError,
    RelayError,
    TooManyRequestsError,
    UnauthorizedError,
)
from shared.models.common import TenantId
from shared.observability import logger
from shared.settings import Settings

_TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class RestResolver(APIGatewayRestResolver):
    """Powertools' REST resolver with routes matched against the whole path.

    Its routes end in `$`, which Python also matches before a trailing newline, so `/jobs/<id>%0A` would reach
    the route with the newline cut off the id. `\\Z` matches only at the very end.
    """

    @staticmethod
    def _compile_regex(rule: str, base_regex: str = "") -> re.Pattern[str]:
        compiled: re.Pattern[str] = ApiGatewayResolver._compile_regex(rule, r"^{}/*\Z")
        return compiled


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return Response(
        status_code=status,
        content_type="application/json",
        body=body.model_dump_json(exclude_none=True),
        headers=headers,
    )


def json_body(text: str) -> Any:
    """A request body parsed as JSON. Nesting past the interpreter's recursion limit and integers past its
    digit limit are malformed requests (400), not faults: `json.loads` raises RecursionError and a plain
    ValueError for them, which the event handler would let escape as a 500."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise  # the event handler answers it as invalid JSON
    except RecursionError:
        raise BadRequestError(
            "the body is nested too deeply",
            details=[{"field": "body", "type": "json_too_deep", "message": "JSON nesting is too deep"}],
        ) from None
    except ValueError:
        limit = sys.get_int_max_str_digits()
        raise BadRequestError(
            "the body holds a number with too many digits",
            details=[
                {"field": "body", "type": "json_number_too_long", "message": f"integers have at most {limit} digits"}
            ],
        ) from None


def _validation_details(errors: Any) -> list[dict[str, str]]:
    found = []
    for error in errors:
        if error.get("type") == "json_invalid":
            found.append({"field": "body", "type": "json_invalid", "message": str(error.get("msg"))})
            continue
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        found.append(
            {"field": ".".join(location) or "body", "type": str(error.get("type")), "message": str(error.get("msg"))}
        )
    return found


def _invalid(exc: RequestValidationError) -> Response[Any]:
    details = _validation_details(exc.errors())
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "bad_request", "the body is not valid JSON", details)
    fields = ", ".join(sorted({d["field"] for d in details}))
    return error_response(422, "validation_error", f"invalid request: {fields}", details)


def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return error_response(
        415,
        "unsupported_media_type",
        "the body must be JSON (Content-Type: application/json)",
        [
            {"field": "body", "type": "unsupported_content_type", "message": str(error.get("msg"))}
            for error in exc.errors()
        ],
    )


def _relay(exc: RelayError) -> Response[Any]:
    if isinstance(exc, ConfigurationError):
        logger.error("configuration problem", reason=exc.message)
        return error_response(500, exc.code, "the service is misconfigured; the operator has been alerted")
    headers = None
    if isinstance(exc, ProviderUnavailableError | TooManyRequestsError) and exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)


def _not_found(exc: Exception) -> Response[Any]:
    return error_response(404, "not_found", "no such route")


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Every error leaves in `{"error": {"code", "message", "details"}}` with its status code."""
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(RelayError)(_relay)
    app.not_found(_not_found)


def tenant_of(event: APIGatewayProxyEvent) -> str:
    """The tenant the authorizer put in the request context; no tenant is no access."""
    authorizer = event.request_context.authorizer.raw_event if event.request_context.authorizer else {}
    tenant = authorizer.get("tenant_id") if isinstance(authorizer, dict) else None
    try:
        # A tenant id no job can be stored under would fail deep inside a submission instead.
        return _TENANT_ID.validate_python(tenant, strict=True)
    except ValidationError:
        raise UnauthorizedError("missing or invalid API key") from None


def body_bytes(event: APIGatewayProxyEvent) -> bytes:
    raw = event.body or ""
    return base64.b64decode(raw) if event.is_base64_encoded else raw.encode()


def base_url(event: APIGatewayProxyEvent, configured: str) -> str:
    """The API's public base URL (including the stage): configured, or as this request reached us."""
    if configured:
        return configured.rstrip("/")
    context = event.request_context
    return f"https://{context.domain_name}/{context.stage}"


# What a browser app (the console) sends and may read, besides the CORS-safelisted headers.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]
CORS_EXPOSED_HEADERS = ["Location", "Idempotent-Replayed", "Retry-After"]
CORS_MAX_AGE_SECONDS = 600


class SettingsCors(CORSConfig):
    """CORS headers for the one origin the settings allow (`cors_allow_origin`), read on each response.

    A deployed function reads its settings once, but local mode runs every function in one process with its
    own settings per invocation, so the origin cannot be fixed when the module is imported. A specific
    origin is echoed with `Vary: Origin`; any other origin gets no CORS headers, so the browser refuses it.
    """

    def __init__(self, settings: Callable[[], Settings]) -> None:
        super().__init__(allow_headers=CORS_REQUEST_HEADERS, expose_headers=CORS_EXPOSED_HEADERS)
        self._settings = settings

    def _current(self) -> CORSConfig:
        return CORSConfig(
            allow_origin=self._settings().cors_allow_origin,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_SECONDS,
        )

    def allowed_origin(self, extracted_origin: str) -> str | None:
        return self._current().allowed_origin(extracted_origin)

    def to_dict(self, origin: str | None) -> dict[str, str]:
        headers = self._current().to_dict(origin)
        if headers and origin != "*":
            headers["Vary"] = "Origin"
        return headers
