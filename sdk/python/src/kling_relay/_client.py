"""`KlingRelay` and `AsyncKlingRelay`: the clients."""

from __future__ import annotations

from types import TracebackType

import httpx

from kling_relay import _http
from kling_relay._http import Call, ClientConfig, resolve_config
from kling_relay._retry import RetryPolicy
from kling_relay.errors import NotFoundError, UsageNotAvailableError
from kling_relay.jobs import AsyncJobs, Jobs, parse
from kling_relay.models import Usage
from kling_relay.providers import AsyncProviders, Providers
from kling_relay.webhooks import Webhooks

USAGE_CALL = Call("GET", "/usage")
DEFAULT_MAX_RETRIES = 3


def _usage_unavailable(error: NotFoundError) -> UsageNotAvailableError:
    return UsageNotAvailableError(
        "this deployment does not serve GET /v1/usage (it predates usage reporting)",
        status_code=error.status_code,
        code=error.code,
        details=error.details,
        request_id=error.request_id,
        response=error.response,
    )


class KlingRelay:
    """A client of the Kling Relay API.

    `base_url` is the API's v1 base (the stack's `ApiUrl` output, e.g. `https://<api>/v1`) and
    `api_key` a key from `kling-relay keys create`; either left out is read from `KLING_RELAY_URL` /
    `KLING_RELAY_API_KEY`. Failed calls are retried `max_retries` times (connection errors, 429, 5xx)
    with backoff, honouring `Retry-After`. Pass `http_client` to bring your own `httpx.Client`
    (proxies, transports); the client closes only the one it made. Use it as a context manager,
    or call `close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config: ClientConfig = resolve_config(
            base_url, api_key, timeout=timeout, max_retries=max_retries, retry=retry
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client()
        self.jobs = Jobs(self._http, self._config)
        self.providers = Providers(self._http, self._config)
        self.webhooks = Webhooks()

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def usage(self) -> Usage:
        """The caller's limits and use this month (`GET /v1/usage`); `UsageNotAvailableError` where not served."""
        try:
            return parse(Usage, _http.send(self._http, self._config, USAGE_CALL))
        except NotFoundError as error:
            raise _usage_unavailable(error) from error

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> KlingRelay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class AsyncKlingRelay:
    """As `KlingRelay`, with coroutines: `async with AsyncKlingRelay() as client: await client.jobs.create(...)`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config: ClientConfig = resolve_config(
            base_url, api_key, timeout=timeout, max_retries=max_retries, retry=retry
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self.jobs = AsyncJobs(self._http, self._config)
        self.providers = AsyncProviders(self._http, self._config)
        self.webhooks = Webhooks()

    @property
    def base_url(self) -> str:
        return self._config.base_url

    async def usage(self) -> Usage:
        """As `KlingRelay.usage`."""
        try:
            return parse(Usage, await _http.asend(self._http, self._config, USAGE_CALL))
        except NotFoundError as error:
            raise _usage_unavailable(error) from error

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncKlingRelay:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
