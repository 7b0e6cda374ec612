"""Logger, Tracer and Metrics, created once and shared by every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "kling-relay"
NAMESPACE = "KlingRelay"

logger = Logger(service=SERVICE)
# Patching every library the X-Ray SDK supports would import each one installed at cold start; AWS calls are
# traced from the start and HTTP calls from the first HTTP client a function makes (`trace_http`).
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def trace_http() -> None:
    """Trace httpx calls from now on (patching twice is a no-op)."""
    tracer.patch(modules=("httpx",))
