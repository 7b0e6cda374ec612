"""One validated settings model, read from environment variables.

`infra/` sets the same names (see `ENV`), so a deployed function and a local one read their
configuration the same way.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.models.common import PROVIDER_NAMES, ProviderList, ProviderName
from shared.models.tiers import DEFAULT_TIER, DEFAULT_TIERS, Tier, TierName
from shared.pacing.limits import DEFAULT_PROVIDER_LIMITS, ProviderLimit

ENV_PREFIX = "KR_"
# The deliver function's timeout leaves room for a delivery this long at most (infra/notifications.py).
MAX_WEBHOOK_DEADLINE_SECONDS = 15.0


def object_from_json_text(value: Any) -> Any:
    """A mapping given as JSON text (an environment variable, a CDK context value) parsed; anything else as is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from exc


class ProviderEndpoint(BaseModel):
    """Where one provider lives and how patient we are with it."""

    base_url: str
    connect_timeout: float = Field(default=5.0, gt=0, le=30)
    read_timeout: float = Field(default=20.0, gt=0, le=120)


DEFAULT_BASE_URLS: dict[ProviderName, str] = {
    "vidgo": "https://api.vidgo.ai",
    "kie": "https://api.kie.ai",
    "aimlapi": "https://api.aimlapi.com",
    "pixwith": "https://api.pixwith.ai",
    # The gccai host is not published; its documentation is APIMart's, so APIMart's host is the default.
    "apimart": "https://api.apimart.ai",
}


class Settings(BaseSettings):
    """Every knob of the system. Names are `KR_` + the upper-cased field name."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # AWS resources (empty outside a function that needs them; each function checks its own).
    table_name: str = ""
    bucket_name: str = ""
    topic_arn: str = ""
    state_machine_arn: str = ""
    provider_secret_name: str = ""
    signing_secret_name: str = ""

    # Routing
    provider_order: Annotated[ProviderList, NoDecode] = PROVIDER_NAMES
    enabled_providers: Annotated[ProviderList, NoDecode] = PROVIDER_NAMES

    # Provider endpoints: KR_VIDGO_BASE_URL etc. override the defaults.
    vidgo_base_url: str = DEFAULT_BASE_URLS["vidgo"]
    kie_base_url: str = DEFAULT_BASE_URLS["kie"]
    aimlapi_base_url: str = DEFAULT_BASE_URLS["aimlapi"]
    pixwith_base_url: str = DEFAULT_BASE_URLS["pixwith"]
    apimart_base_url: str = DEFAULT_BASE_URLS["apimart"]
    provider_connect_timeout: float = Field(default=5.0, gt=0, le=30)
    provider_read_timeout: float = Field(default=20.0, gt=0, le=120)
    callback_recheck_timeout: float = Field(default=4.0, gt=0, le=10)

    # Public base URL of the API, for provider callbacks. Empty = derived from the request.
    public_base_url: str = ""

    # Job lifecycle
    job_deadline_seconds: int = Field(default=3600, ge=60, le=86_400)
    submit_grace_seconds: int = Field(default=120, ge=5, le=3600)
    archive_grace_seconds: int = Field(default=1800, ge=60, le=86_400)
    poll_min_wait_seconds: int = Field(default=15, ge=1, le=3600)
    poll_max_wait_seconds: int = Field(default=120, ge=1, le=3600)
    poll_backoff_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    callback_first_wait_seconds: int = Field(default=90, ge=1, le=3600)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60, le=7 * 86_400)
    job_retention_days: int = Field(default=0, ge=0, le=3650)  # 0 keeps jobs forever
    # Dispatch: how long a job waits between rounds when no provider could take it (full jitter on top of any
    # provider's Retry-After or the pacer's next free slot), never past the job's deadline.
    dispatch_retry_base_seconds: float = Field(default=2.0, gt=0, le=600)
    dispatch_retry_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Per provider: new tasks per window and tasks in flight, enforced across every function (shared/pacing).
    provider_limits: dict[ProviderName, ProviderLimit] = Field(default_factory=lambda: dict(DEFAULT_PROVIDER_LIMITS))
    # Status answers in a row the relay cannot act on before a job fails (it also fails at its deadline).
    unrecognized_answer_limit: int = Field(default=10, ge=1, le=1000)

    # Archive
    max_video_bytes: int = Field(default=2 * 1024**3, ge=1024, le=50 * 1024**3)
    archive_part_bytes: int = Field(default=8 * 1024**2, ge=5 * 1024**2, le=512 * 1024**2)
    archive_parts_in_flight: int = Field(default=4, ge=1, le=16)
    download_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    presign_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)

    # Webhooks: one delivery (connect, TLS, request, response headers) ends by this deadline, whatever the
    # endpoint does; the deliver function's timeout leaves room for it and the bookkeeping around it.
    webhook_deadline_seconds: float = Field(default=10.0, gt=0, le=MAX_WEBHOOK_DEADLINE_SECONDS)

    # Security
    kie_signature_window_seconds: int = Field(default=300, ge=30, le=3600)
    max_callback_bytes: int = Field(default=256 * 1024, ge=1024, le=6 * 1024**2)
    # Local mode: loopback addresses are allowed for outbound fetches (the emulator lives there).
    local_mode: bool = False
    # The one origin browsers may call the API from (the console's), or `*` for any when there is no console.
    cors_allow_origin: str = Field(default="*", pattern=r"^(\*|https?://[^/\s]+)$")

    # Tenants: the usage plan tiers (JSON: name -> rate_limit, burst_limit, monthly_requests) and the tier of a
    # tenant that names none.
    tenant_tiers: dict[TierName, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_tier: TierName = DEFAULT_TIER

    # Read from the environment as JSON by the settings source; from a plain mapping of strings, here.
    _objects_from_json = field_validator("provider_limits", "tenant_tiers", mode="before")(object_from_json_text)

    @model_validator(mode="after")
    def _waits_ordered(self) -> Settings:
        if self.poll_min_wait_seconds > self.poll_max_wait_seconds:
            raise ValueError("poll_min_wait_seconds must not exceed poll_max_wait_seconds")
        if self.dispatch_retry_base_seconds > self.dispatch_retry_max_seconds:
            raise ValueError("dispatch_retry_base_seconds must not exceed dispatch_retry_max_seconds")
        return self

    @model_validator(mode="after")
    def _default_tier_exists(self) -> Settings:
        if self.default_tier not in self.tenant_tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of tenant_tiers")
        return self

    def tier(self, name: str | None) -> tuple[str, Tier]:
        """A tenant's tier by name (the default for None); a name no longer configured falls back to the default."""
        chosen = name if name in self.tenant_tiers else self.default_tier
        return chosen, self.tenant_tiers[chosen]

    def provider_limit(self, provider: ProviderName) -> ProviderLimit:
        """The provider's configured limits; a provider left out of `provider_limits` keeps its default."""
        return self.provider_limits.get(provider) or DEFAULT_PROVIDER_LIMITS[provider]

    def endpoint(self, provider: ProviderName) -> ProviderEndpoint:
        base_url: str = getattr(self, f"{provider}_base_url")
        return ProviderEndpoint(
            base_url=base_url.rstrip("/"),
            connect_timeout=self.provider_connect_timeout,
            read_timeout=self.provider_read_timeout,
        )

    def routing_order(self) -> tuple[ProviderName, ...]:
        """Providers `auto` may use, in order: the configured order, then any enabled rest."""
        enabled = set(self.enabled_providers)
        ordered = [p for p in self.provider_order if p in enabled]
        return tuple(ordered + [p for p in self.enabled_providers if p not in ordered])


def env_name(field: str) -> str:
    """The environment variable behind a settings field (used by `infra/` and `local/`)."""
    if field not in Settings.model_fields:
        raise KeyError(f"unknown setting {field}")
    return f"{ENV_PREFIX}{field.upper()}"


def get_settings() -> Settings:
    """Settings from the environment, read now (a function's runtime keeps the ones it started with)."""
    return Settings()
