"""Deployment configuration, read from CDK context (`cdk deploy -c relay:<key>=<value>`) with defaults.

Keys are `relay:` + a field name below. Values given on the command line arrive as strings, so lists are
comma-separated and numbers are parsed. An unknown `relay:` key or a bad value stops the synth with an
error naming the key.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Protocol

from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.models.common import PROVIDER_NAMES, ProviderList, ProviderName
from shared.models.tiers import DEFAULT_TIER, DEFAULT_TIERS, Tier, TierName
from shared.pacing.limits import DEFAULT_PROVIDER_LIMITS, ProviderLimit
from shared.settings import Settings, object_from_json_text

CONTEXT_PREFIX = "relay:"

# CloudWatch Logs accepts only these retention periods.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

# S3 moves objects to Standard-IA no sooner than 30 days after creation.
INFREQUENT_ACCESS_AFTER_DAYS = 30

# Beyond deadline + archive grace: one longest wait, a poll, and the poll task's retries.
POLLER_MARGIN_SECONDS = 15 * 60


def _setting(field: str) -> Any:
    """The runtime settings field itself, so defaults and bounds cannot drift from what functions accept."""
    return Settings.model_fields[field]


# How long the archive may take after a job finished at the provider (the functions use the settings default).
ARCHIVE_GRACE_SECONDS = int(_setting("archive_grace_seconds").default)


class InvalidContextError(ValueError):
    """A `relay:` context value the stack cannot be built with."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid CDK context: " + "; ".join(problems))
        self.problems = problems


class ContextSource(Protocol):
    def try_get_context(self, key: str) -> Any: ...


class RelayConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Routing: the order `auto` tries providers in (enabled ones not named go last), and which may be used.
    provider_order: ProviderList = PROVIDER_NAMES
    enabled_providers: ProviderList = PROVIDER_NAMES
    # A job not finished this long after submission is timed out; the poller's state machine outlives it.
    job_deadline_seconds: Annotated[int, _setting("job_deadline_seconds")]
    # Finished jobs are deleted (DynamoDB TTL) this many days after completion; 0 keeps them.
    job_retention_days: Annotated[int, _setting("job_retention_days")]
    # Archived videos are deleted this many days after upload; 0 keeps them.
    video_expiry_days: int = Field(default=0, ge=0, le=36_500)
    max_video_bytes: Annotated[int, _setting("max_video_bytes")]
    log_retention_days: int = 30
    # API Gateway applies the stage's throttle to each method separately; the callback route has its own, lower
    # budget, so junk callbacks are refused there and spend nothing of what the apps' routes may use.
    api_throttle_rate: float = Field(default=50.0, gt=0, le=10_000)
    api_throttle_burst: int = Field(default=100, ge=1, le=5_000)
    callback_throttle_rate: float = Field(default=20.0, gt=0, le=10_000)
    callback_throttle_burst: int = Field(default=40, ge=1, le=5_000)
    # Concurrent deliver invocations (each delivers its batch of up to 10 events at once): what webhook delivery
    # may take of the account's Lambda concurrency however many events wait, so the API always has its share.
    webhook_concurrency: int = Field(default=10, ge=2, le=1000)
    # How long API Gateway keeps an API key's authorizer answer: a revoked key works this long at most.
    # 0 asks the authorizer (one DynamoDB read) on every request.
    authorizer_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # A WAFv2 web ACL on the stage: per-IP rate limits (a tighter one on callbacks) and AWS managed rules.
    waf: bool = True
    # Requests per source IP in any 5 minutes before WAF blocks that IP (AWS's minimum is 10).
    waf_ip_limit: int = Field(default=6000, ge=10, le=2_000_000_000)
    waf_callback_ip_limit: int = Field(default=1500, ge=10, le=2_000_000_000)
    # API Gateway logs to CloudWatch only with a region-wide role; turn off if the account already has one.
    api_cloudwatch_role: bool = True
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    failure_rate_alarm_percent: float = Field(default=20.0, gt=0, le=100)
    callbacks_rejected_alarm_threshold: int = Field(default=10, ge=1)
    # The web console (CloudFront + S3); the API's CORS then allows its origin only.
    console: bool = True
    # Per provider: new tasks per window and tasks in flight (shared/pacing); a provider left out keeps its default.
    # On the command line, JSON: -c 'relay:provider_limits={"kie": {"submits_per_window": 20, "window_seconds": 10,
    # "max_in_flight": 100}}'.
    provider_limits: dict[ProviderName, ProviderLimit] = Field(default_factory=lambda: dict(DEFAULT_PROVIDER_LIMITS))
    # SnapStart on the functions callers wait on (api, authorizer, callback), invoked through a `live` alias.
    snapstart: bool = False
    # Tenant tiers, one API Gateway usage plan each: name -> {rate_limit, burst_limit, monthly_requests}
    # (a JSON object on the command line). A tenant's tier is set by `kling-relay keys create|tenants set`.
    tenant_tiers: dict[TierName, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS), min_length=1)
    default_tier: TierName = DEFAULT_TIER

    @field_validator("enabled_providers")
    @classmethod
    def _some_enabled(cls, value: tuple[ProviderName, ...]) -> tuple[ProviderName, ...]:
        if not value:
            raise ValueError("at least one provider must be enabled")
        return value

    # On the command line (-c relay:...=...) these are JSON text.
    _objects_from_json = field_validator("provider_limits", "tenant_tiers", mode="before")(object_from_json_text)

    @property
    def provider_limits_json(self) -> str:
        """Every provider's limits (defaults filled in), as the functions' settings read them."""
        limits = {**DEFAULT_PROVIDER_LIMITS, **self.provider_limits}
        return json.dumps({name: limit.model_dump() for name, limit in limits.items()}, separators=(",", ":"))

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {sorted(RETENTION_DAYS)}")
        return value

    @model_validator(mode="after")
    def _default_tier_exists(self) -> RelayConfig:
        if self.default_tier not in self.tenant_tiers:
            raise ValueError(
                f"default_tier {self.default_tier!r} is not one of tenant_tiers {sorted(self.tenant_tiers)}"
            )
        return self

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION_DAYS[self.log_retention_days]

    @property
    def poller_timeout_seconds(self) -> int:
        """The poller's backstop: the job deadline, the archive grace, then room for a last wait and retries."""
        return self.job_deadline_seconds + ARCHIVE_GRACE_SECONDS + POLLER_MARGIN_SECONDS

    @classmethod
    def from_context(cls, node: ContextSource, keys: list[str]) -> RelayConfig:
        """Read `relay:*` keys; `keys` is every context key present, so misspelt ones are caught."""
        unknown = [k for k in keys if k.startswith(CONTEXT_PREFIX) and k[len(CONTEXT_PREFIX) :] not in cls.model_fields]
        if unknown:
            raise InvalidContextError([f"unknown key {k}" for k in sorted(unknown)])
        values = {
            name: value
            for name in cls.model_fields
            if (value := node.try_get_context(CONTEXT_PREFIX + name)) is not None
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidContextError(
                [f"{CONTEXT_PREFIX}{'.'.join(str(p) for p in err['loc']) or '*'}: {err['msg']}" for err in exc.errors()]
            ) from exc
