"""One API call over httpx, sync or async: the request, its retries, and the answer or typed error."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from kling_relay._retry import RetryPolicy, retry_after_header
from kling_relay._version import __version__
from kling_relay.errors import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    error_class,
)

URL_VARIABLE = "KLING_RELAY_URL"
KEY_VARIABLE = "KLING_RELAY_API_KEY"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = f"kling-relay-python/{__version__}"

# Looked up at call time so tests can replace them.
_sleep = time.sleep
_asleep = asyncio.sleep


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str = field(repr=False)
    retry: RetryPolicy
    timeout: httpx.Timeout


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The API's v1 base URL without its trailing slash; https, or http only to this machine."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"the base URL {url!r} is not a URL: {exc}") from exc
    if parsed.userinfo:  # not echoed: it holds a credential
        raise ConfigurationError("the base URL must not carry credentials (user:password@)")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"the base URL {url!r} must be an http(s) URL, e.g. https://<api>/v1")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise ConfigurationError(
            f"the base URL {url!r} is plain http to another machine: the API key would travel unencrypted; use https"
        )
    if parsed.query or parsed.fragment:
        raise ConfigurationError(f"the base URL {url!r} must not carry a query or a fragment")
    return str(parsed).rstrip("/")


def resolve_config(
    base_url: str | None,
    api_key: str | None,
    *,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    retry: RetryPolicy | None,
) -> ClientConfig:
    url = (base_url or os.environ.get(URL_VARIABLE) or "").strip()
    key = (api_key or os.environ.get(KEY_VARIABLE) or "").strip()
    if not url:
        raise ConfigurationError(f"no base URL: pass base_url or set {URL_VARIABLE} (e.g. https://<api>/v1)")
    if not key:
        raise ConfigurationError(f"no API key: pass api_key or set {KEY_VARIABLE}")
    if max_retries < 0:
        raise ConfigurationError("max_retries must be 0 or more")
    if timeout is None:
        resolved_timeout = DEFAULT_TIMEOUT
    elif isinstance(timeout, httpx.Timeout):
        resolved_timeout = timeout
    else:
        resolved_timeout = httpx.Timeout(timeout)
    return ClientConfig(
        base_url=check_base_url(url),
        api_key=key,
        retry=retry or RetryPolicy(max_retries=max_retries),
        timeout=resolved_timeout,
    )


@dataclass(frozen=True)
class Call:
    """One API request, retried as a whole."""

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _request(http: httpx.Client | httpx.AsyncClient, config: ClientConfig, call: Call) -> httpx.Request:
    headers = {
        "Authorization": f"Bearer {config.api_key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        **call.headers,
    }
    params = {k: v for k, v in (call.params or {}).items() if v is not None}
    return http.build_request(
        call.method,
        f"{config.base_url}{call.path}",
        params=params or None,
        json=call.json,
        headers=headers,
        timeout=config.timeout,
    )


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The typed error for an error answer, from the API's `{"error": {"code", "message", "details"}}`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("error") if isinstance(body, dict) else None
    code = message = None
    details: Any = None
    if isinstance(detail, dict):
        code, message, details = detail.get("code"), detail.get("message"), detail.get("details")
    elif isinstance(body, dict):  # e.g. API Gateway's own {"message": ...}
        message = body.get("message")
    status = response.status_code
    if not isinstance(code, str) or not code:
        code = error_class(status, "").default_code or f"http_{status}"
    if not isinstance(message, str) or not message:
        message = response.text[:200].strip() or response.reason_phrase or f"HTTP {status}"
    cls = error_class(status, code)
    return cls(
        message,
        status_code=status,
        code=code,
        details=details,
        retry_after=retry_after_header(response.headers),
        request_id=response.headers.get("x-amzn-requestid") or response.headers.get("x-request-id"),
        response=response,
    )


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise APIResponseError(
            f"the API answered {response.status_code} with a body that is not JSON", response=response
        ) from None


def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return kind(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}", request=request)


def _give_up(error: APIStatusError | APIConnectionError, tries: int) -> APIStatusError | APIConnectionError:
    error.tries = tries
    return error


def send(http: httpx.Client, config: ClientConfig, call: Call) -> Any:
    """The decoded JSON answer; the typed error once retries are spent or the error is final."""
    retries = 0
    while True:
        request = _request(http, config, call)
        cause: Exception | None = None
        try:
            response = http.send(request)
        except httpx.TransportError as exc:
            error: APIStatusError | APIConnectionError = _transport_error(exc, request)
            cause = exc
        else:
            if response.is_success:
                return _decode(response)
            error = error_from_response(response)
        delay = config.retry.delay(retries, error)
        if delay is None:
            raise _give_up(error, retries + 1) from cause
        retries += 1
        _sleep(delay)


async def asend(http: httpx.AsyncClient, config: ClientConfig, call: Call) -> Any:
    """As `send`, for the async client."""
    retries = 0
    while True:
        request = _request(http, config, call)
        cause: Exception | None = None
        try:
            response = await http.send(request)
        except httpx.TransportError as exc:
            error: APIStatusError | APIConnectionError = _transport_error(exc, request)
            cause = exc
        else:
            if response.is_success:
                return _decode(response)
            error = error_from_response(response)
        delay = config.retry.delay(retries, error)
        if delay is None:
            raise _give_up(error, retries + 1) from cause
        retries += 1
        await _asleep(delay)
