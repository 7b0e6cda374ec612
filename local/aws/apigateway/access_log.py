"""One access-log line per request, in the stage's AccessLogSetting format where it is given."""

from __future__ import annotations

import json
import logging

from local.aws.apigateway.exchange import Exchange
from local.aws.apigateway.responses import substitute

log = logging.getLogger("local.aws.apigateway.access")

DEFAULT_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "resource": "$context.resourcePath",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "errorType": "$context.error.responseType",
}


def access_line(log_format: str | None, exchange: Exchange) -> str:
    """The format's `$context` variables filled in (`-` where a value is absent), as JSON when it is JSON."""
    variables = exchange.variables()
    fields: object = DEFAULT_FIELDS
    if log_format is not None:
        try:
            fields = json.loads(log_format)
        except json.JSONDecodeError:
            return substitute(log_format, variables, missing="-")
    if not isinstance(fields, dict):
        return substitute(str(log_format), variables, missing="-")
    return json.dumps(
        {
            key: substitute(value, variables, missing="-") if isinstance(value, str) else value
            for key, value in fields.items()
        }
    )


def write_access_log(log_format: str | None, exchange: Exchange) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug(access_line(log_format, exchange))
