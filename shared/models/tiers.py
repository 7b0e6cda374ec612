"""Tenant tiers: the request rate, burst and monthly request quota of an API Gateway usage plan."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TIER_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
TIER_NAME = re.compile(TIER_NAME_PATTERN)
# pydantic reads `$` as the end of the text (see shared.models.common).
TierName = Annotated[str, StringConstraints(pattern=f"^{TIER_NAME_PATTERN}$")]


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: float = Field(gt=0, le=10_000, description="Steady requests per second.")
    burst_limit: int = Field(ge=1, le=5_000, description="Requests allowed at once above the rate.")
    monthly_requests: int | None = Field(
        default=None, ge=1, description="Requests per calendar month (UTC); none is unlimited."
    )


def usage_plan_name(stack_name: str, tier: str) -> str:
    """The deployed usage plan of a tier, found by this name (`kling-relay keys create`, `tenants set`)."""
    return f"{stack_name}-tier-{tier}"


DEFAULT_TIER = "standard"
DEFAULT_TIERS: dict[str, Tier] = {
    "free": Tier(rate_limit=2, burst_limit=5, monthly_requests=10_000),
    "standard": Tier(rate_limit=10, burst_limit=20, monthly_requests=200_000),
    "pro": Tier(rate_limit=100, burst_limit=200, monthly_requests=5_000_000),
}
