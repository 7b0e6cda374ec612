"""Errors API Gateway answers itself (gateway responses): defaults, the template's overrides, `$context` text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from local.aws.apigateway.definition import REQUEST_PARAMETER, ApiDefinition, GatewayResponse
from local.aws.apigateway.messages import HttpRequest, HttpResponse

# Response type -> API Gateway's default status code.
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "DEFAULT_4XX": 400,
    "DEFAULT_5XX": 500,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
ERROR_TYPE_HEADER = {
    "ACCESS_DENIED": "AccessDeniedException",
    "AUTHORIZER_CONFIGURATION_ERROR": "AuthorizerConfigurationException",
    "AUTHORIZER_FAILURE": "AuthorizerConfigurationException",
    "BAD_REQUEST_BODY": "BadRequestException",
    "BAD_REQUEST_PARAMETERS": "BadRequestException",
    "DEFAULT_5XX": "InternalServerErrorException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "UNAUTHORIZED": "UnauthorizedException",
}
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


class GatewayError(Exception):
    """A request API Gateway answers itself, by response type (`UNAUTHORIZED`, `ACCESS_DENIED`, ...).

    `message` None is API Gateway's `{"message": null}` (authorizer failures). `status` fixes the status
    code where API Gateway does regardless of the type's default (502 for a failed Lambda proxy call).
    """

    def __init__(
        self,
        response_type: str,
        message: str | None,
        *,
        status: int | None = None,
        validation_error: str | None = None,
    ) -> None:
        super().__init__(f"{response_type}: {message}")
        self.response_type = response_type
        self.message = message
        self.status = status
        self.validation_error = validation_error


def substitute(text: str, variables: Mapping[str, str], missing: str = "") -> str:
    """Replace `$context.<name>` with its value; longer names win (`$context.error.messageString`)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        while name:
            if name in variables:
                return variables[name] + match.group(1)[len(name) :]
            if "." not in name:
                break
            name = name.rsplit(".", 1)[0]
        return missing

    return _VARIABLE.sub(replace, text)


def _configured(api: ApiDefinition | None, response_type: str) -> GatewayResponse | None:
    if api is None:
        return None
    if response_type in api.gateway_responses:
        return api.gateway_responses[response_type]
    default_status = DEFAULT_STATUS.get(response_type, 500)
    return api.gateway_responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")


def _header_value(source: str, request: HttpRequest, path_parameters: Mapping[str, str]) -> str | None:
    if source.startswith("'") and source.endswith("'") and len(source) >= 2:
        return source[1:-1]
    match = REQUEST_PARAMETER.match(source)
    if match is None:
        return None
    location, name = match["location"], match["name"]
    if location in ("header", "multivalueheader"):
        values = request.header_values(name)
    elif location in ("querystring", "multivaluequerystring"):
        values = request.query_values(name)
    else:
        values = [path_parameters[name]] if name in path_parameters else []
    if not values:
        return None
    return ",".join(values) if location.startswith("multivalue") else values[-1]


def render(
    api: ApiDefinition | None,
    error: GatewayError,
    variables: Mapping[str, str],
    request: HttpRequest,
    path_parameters: Mapping[str, str] | None = None,
) -> HttpResponse:
    """The response for `error`: the template's GatewayResponse for its type (or DEFAULT_4XX/5XX), else AWS's."""
    specific = api.gateway_responses.get(error.response_type) if api else None
    configured = _configured(api, error.response_type)
    status = error.status or (specific.status if specific else None) or DEFAULT_STATUS.get(error.response_type, 500)
    templates = configured.templates if configured and configured.templates else {}
    content_type = "application/json" if "application/json" in templates or not templates else next(iter(templates))
    template = templates.get(content_type, DEFAULT_TEMPLATE)
    values = {
        **variables,
        "error.message": error.message or "",
        "error.messageString": json.dumps(error.message),
        "error.responseType": error.response_type,
        "error.validationErrorString": error.validation_error or "",
    }
    headers = [("Content-Type", content_type)]
    if error.response_type in ERROR_TYPE_HEADER:
        headers.append(("x-amzn-ErrorType", ERROR_TYPE_HEADER[error.response_type]))
    for name, source in (configured.parameters if configured else {}).items():
        value = _header_value(source, request, path_parameters or {})
        if value is not None:
            headers.append((name, value))
    return HttpResponse(status, headers, substitute(template, values).encode())
