"""Everything a function needs, built lazily from settings; tests pass their own clients in.

A Lambda process keeps one `Runtime` (`get_runtime`), so it keeps one boto3 client per service: `client()` is
the only client cache. The gateways, repositories and secret store built here all use those clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared import aws
from shared.errors import ConfigurationError, ProviderUnavailableError
from shared.models.common import ProviderName, utcnow
from shared.observability import trace_http
from shared.settings import Settings, get_settings

# What only some functions use (HTTP clients, provider adapters, secrets, the URL guard) is imported
# where it is first needed, so each function's cold start pays only for what it uses.
if TYPE_CHECKING:
    import httpx

    from shared.gateways.archive_store import ArchiveStore
    from shared.gateways.delivery_queue import DeliveryQueue
    from shared.gateways.event_publisher import EventPublisher
    from shared.gateways.poller import Poller
    from shared.pacing.pacer import Pacer
    from shared.providers.base import Provider
    from shared.repository.jobs import JobRepository
    from shared.repository.keys import KeyRepository
    from shared.repository.tenant_usage import TenantUsageRepository
    from shared.secrets import ProviderCredentials, SecretStore
    from shared.signing import SigningKeys
    from shared.urlguard import Resolver, UrlGuard

USER_AGENT = "kling-relay/1"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clients: dict[str, Any] | None = None,
        provider_http: httpx.Client | None = None,
        resolver: Resolver | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self._clients = dict(clients or {})
        self._provider_http = provider_http
        self._resolver = resolver
        self.clock = clock

    def client(self, service: str) -> Any:
        """This runtime's client for `service`: the one passed in, else made on first use and kept."""
        if service not in self._clients:
            self._clients[service] = aws.new_client(service)
        return self._clients[service]

    def require(self, *fields: str) -> None:
        """Fail closed when a setting this function depends on is missing."""
        missing = [name for name in fields if not getattr(self.settings, name)]
        if missing:
            raise ConfigurationError(f"missing settings: {', '.join(missing)}")

    @cached_property
    def jobs(self) -> JobRepository:
        from shared.repository.jobs import JobRepository

        self.require("table_name")
        return JobRepository(
            self.settings.table_name,
            self.client("dynamodb"),
            retention_days=self.settings.job_retention_days,
            idempotency_ttl_seconds=self.settings.idempotency_ttl_seconds,
        )

    @cached_property
    def pacer(self) -> Pacer:
        from shared.pacing.pacer import Pacer

        self.require("table_name")
        return Pacer(
            self.settings.table_name,
            self.client("dynamodb"),
            self.settings.provider_limit,
            clock=lambda: self.clock().timestamp(),
        )

    @cached_property
    def keys(self) -> KeyRepository:
        from shared.repository.keys import KeyRepository

        self.require("table_name")
        return KeyRepository(self.settings.table_name, self.client("dynamodb"))

    @cached_property
    def tenant_usage(self) -> TenantUsageRepository:
        from shared.repository.tenant_usage import TenantUsageRepository

        self.require("table_name")
        return TenantUsageRepository(self.settings.table_name, self.client("dynamodb"))

    @cached_property
    def archive_store(self) -> ArchiveStore:
        from shared.gateways.archive_store import ArchiveStore

        self.require("bucket_name")
        return ArchiveStore(self.client("s3"), self.settings.bucket_name, credentials_expiry=aws.credentials_expiry)

    @cached_property
    def poller(self) -> Poller:
        from shared.gateways.poller import Poller

        self.require("state_machine_arn")
        return Poller(self.client("stepfunctions"), self.settings.state_machine_arn)

    @cached_property
    def event_publisher(self) -> EventPublisher:
        from shared.gateways.event_publisher import EventPublisher

        self.require("topic_arn")
        return EventPublisher(self.client("sns"), self.settings.topic_arn)

    @cached_property
    def delivery_queue(self) -> DeliveryQueue:
        from shared.gateways.delivery_queue import DeliveryQueue

        return DeliveryQueue(self.client("sqs"))

    @cached_property
    def secrets(self) -> SecretStore:
        from shared.secrets import SecretStore

        return SecretStore(
            self.settings.provider_secret_name, self.settings.signing_secret_name, self.client("secretsmanager")
        )

    def signing_keys(self) -> SigningKeys:
        return self.secrets.signing_keys()

    def provider_credentials(self) -> ProviderCredentials:
        return self.secrets.provider_credentials()

    @cached_property
    def url_guard(self) -> UrlGuard:
        from shared.urlguard import UrlGuard

        return UrlGuard(allow_loopback=self.settings.local_mode, resolver=self._resolver)

    @cached_property
    def provider_http(self) -> httpx.Client:
        import httpx

        trace_http()
        if self._provider_http is not None:
            return self._provider_http
        timeout = httpx.Timeout(self.settings.provider_read_timeout, connect=self.settings.provider_connect_timeout)
        return httpx.Client(timeout=timeout, trust_env=False, headers={"User-Agent": USER_AGENT})

    def outbound_http(
        self, *, timeout: float, follow_redirects: bool, deadline_seconds: float | None = None
    ) -> httpx.Client:
        """A client for app webhooks and result downloads: only addresses the URL guard allows; with
        `deadline_seconds`, everything it does ends by then (see `guarded_http_client`)."""
        import httpx

        from shared.urlguard import guarded_http_client

        trace_http()
        return guarded_http_client(
            self.url_guard,
            timeout=httpx.Timeout(timeout, connect=5.0),
            follow_redirects=follow_redirects,
            deadline_seconds=deadline_seconds,
        )

    def provider(self, name: ProviderName, credentials: ProviderCredentials | None = None) -> Provider:
        """The adapter for `name`; a provider without an API key is unavailable, not an error of the request."""
        from shared.providers.registry import build_provider

        adapter = build_provider(name, self.settings, credentials or self.provider_credentials(), self.provider_http)
        if adapter is None:
            raise ProviderUnavailableError(
                f"{name} is not configured (no API key)", details={"provider": name, "reason": "not_configured"}
            )
        return adapter


_current: Runtime | None = None
# The local stack runs several functions in one process: each invocation installs its own runtime here.
_invocation: ContextVar[Runtime | None] = ContextVar("kling_relay_runtime", default=None)


def get_runtime() -> Runtime:
    """This invocation's runtime, else the process's (built from settings on first use, kept warm)."""
    global _current  # noqa: PLW0603 (one runtime per Lambda process is the point)
    installed = _invocation.get()
    if installed is not None:
        return installed
    if _current is None:
        _current = Runtime(get_settings())
    return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Install the process's runtime (tests), or None to rebuild from settings on next use."""
    global _current  # noqa: PLW0603
    _current = runtime


@contextmanager
def using_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Run the enclosed code (on this thread) with `runtime`, as one Lambda invocation."""
    token = _invocation.set(runtime)
    try:
        yield runtime
    finally:
        _invocation.reset(token)
