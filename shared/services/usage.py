"""What a tenant may use and what it used this month (`GET /v1/usage`)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from shared.gateways.usage_plans import UsagePlans
from shared.models.usage import CreditUsage, RequestUsage, UsageLimits, UsageView
from shared.observability import logger
from shared.repository.keys import TenantRecord
from shared.repository.tenant_usage import month_of
from shared.runtime import Runtime


def usage_of(rt: Runtime, tenant_id: str) -> UsageView:
    now = rt.clock()
    month = month_of(now)
    tenant = rt.keys.get_tenant(tenant_id)
    tier_name, tier = rt.settings.tier(tenant.tier if tenant else None)
    spent = rt.tenant_usage.month(tenant_id, month)
    budget = tenant.monthly_credits if tenant else None
    used = _requests_used(rt, tenant)
    return UsageView(
        tenant_id=tenant_id,
        month=month,
        limits=UsageLimits(
            tier=tier_name,
            rate_limit=tier.rate_limit,
            burst_limit=tier.burst_limit,
            monthly_requests=tier.monthly_requests,
            max_active_jobs=tenant.max_active_jobs if tenant else None,
            monthly_credits=budget,
        ),
        active_jobs=rt.tenant_usage.active(tenant_id),
        jobs_this_month=spent.jobs,
        credits=CreditUsage(
            committed=spent.credits_committed,
            remaining=max(0.0, budget - spent.credits_committed) if budget is not None else None,
            by_provider=spent.by_provider,
        ),
        requests=RequestUsage(
            used=used,
            remaining=max(0, tier.monthly_requests - used)
            if used is not None and tier.monthly_requests is not None
            else None,
        ),
    )


def _requests_used(rt: Runtime, tenant: TenantRecord | None) -> int | None:
    """From the usage plan's own count; None where the tenant has no usage key or the plan cannot be read."""
    if tenant is None or tenant.usage_key_id is None or tenant.usage_plan_id is None:
        return None
    today = rt.clock().date()
    try:
        return UsagePlans(rt.client("apigateway")).requests_used(
            tenant.usage_plan_id, tenant.usage_key_id, today.replace(day=1), today
        )
    except ClientError as exc:
        # The limits and credits are still worth answering with; the count is reported as unknown.
        logger.warning("usage plan count unavailable", tenant_id=tenant.tenant_id, error=str(exc))
        return None
