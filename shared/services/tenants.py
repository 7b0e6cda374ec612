"""Operator work on tenants: their caps and tier, and the usage plan key API Gateway counts them under."""

from __future__ import annotations

from shared.errors import ValidationFailedError
from shared.gateways.usage_plans import UsagePlans
from shared.repository.keys import KeyRepository, TenantLimits, TenantRecord


class UnknownTierError(ValidationFailedError):
    code = "unknown_tier"


def provision(
    keys: KeyRepository,
    plans: UsagePlans,
    plan_ids: dict[str, str],
    tenant_id: str,
    limits: TenantLimits,
    *,
    default_tier: str,
    unlimited: tuple[str, ...] = (),
) -> TenantRecord:
    """Create the tenant if new, set its caps and tier, and give it a key in its tier's usage plan.

    A tenant without a usage plan key is refused by API Gateway (403), so every tenant gets one here; a tier
    change moves the key to the new tier's plan (added there before it leaves the old one).
    """
    if not plan_ids:
        raise UnknownTierError("the deployment has no usage plans: is the stack deployed, and named right?")
    existing = keys.get_tenant(tenant_id)
    tier = limits.tier or (existing.tier if existing else None) or default_tier
    if tier not in plan_ids:
        raise UnknownTierError(
            f"no tier {tier!r} in this deployment (tiers: {', '.join(sorted(plan_ids))})", details={"field": "tier"}
        )
    keys.ensure_tenant(tenant_id)
    tenant = keys.set_limits(tenant_id, limits.model_copy(update={"tier": tier}), unlimited=unlimited)
    plan_id = plan_ids[tier]
    if tenant.usage_key_id is None or tenant.usage_key is None:
        key = plans.create_key(tenant_id, plan_id)
        return keys.set_usage_key(tenant_id, key.key_id, key.value, plan_id)
    if tenant.usage_plan_id != plan_id:
        plans.move_key(tenant.usage_key_id, plan_id, tenant.usage_plan_id)
        return keys.set_usage_key(tenant_id, tenant.usage_key_id, tenant.usage_key, plan_id)
    return tenant
