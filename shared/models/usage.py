"""`GET /v1/usage`: the caller's limits and what it used this month."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UsageLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: str
    rate_limit: float = Field(description="Requests per second (the tier's usage plan).")
    burst_limit: int
    monthly_requests: int | None = Field(description="Requests per calendar month; null is unlimited.")
    max_active_jobs: int | None = Field(description="Unfinished jobs at once; null is unlimited.")
    monthly_credits: float | None = Field(description="Provider credits per calendar month; null is unlimited.")


class CreditUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    committed: float = Field(
        description="What counts against the budget: unfinished jobs' estimates and finished jobs' final cost."
    )
    remaining: float | None = Field(description="What is left of `monthly_credits`; null without a budget.")
    by_provider: dict[str, float] = Field(description="Final credits of this month's finished jobs, by provider.")


class RequestUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    used: int | None = Field(description="Requests counted by the usage plan this month; null where not metered.")
    remaining: int | None = Field(description="What is left of `monthly_requests`; null if unlimited or unknown.")


class UsageView(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    month: str = Field(description="The calendar month (UTC) counted, YYYY-MM.")
    limits: UsageLimits
    active_jobs: int
    jobs_this_month: int
    credits: CreditUsage
    requests: RequestUsage
