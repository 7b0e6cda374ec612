"""`kling-relay tenants show|set` (operator) and `kling-relay usage` (an app's own, through the SDK)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from cli import deployment
from cli.jobs_cmd import client, run_guarded
from cli.keys_cmd import tenant_id
from cli.tenant_args import add_limit_arguments, limits_from, provision_tenant
from shared.errors import NotFoundError
from shared.repository.keys import KeyRepository, TenantRecord
from shared.repository.tenant_usage import TenantUsageRepository, month_of


def _describe(repo: KeyRepository, table_name: str, tenant: TenantRecord) -> dict[str, object]:
    month = month_of(datetime.now(UTC))
    counters = TenantUsageRepository(table_name, repo.client)
    used = counters.month(tenant.tenant_id, month)
    return {
        "tenant": tenant.tenant_id,
        "tier": tenant.tier,
        "max_active_jobs": tenant.max_active_jobs,
        "monthly_credits": tenant.monthly_credits,
        "active_jobs": counters.active(tenant.tenant_id),
        "month": month,
        "credits_committed": used.credits_committed,
        "credits_by_provider": used.by_provider,
        "usage_key_id": tenant.usage_key_id,
        "usage_plan_id": tenant.usage_plan_id,
        "keys": len(repo.list_keys(tenant.tenant_id)),
    }


def _print(described: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(described))
        return
    for name, value in described.items():
        shown = "unlimited" if value is None and name in ("max_active_jobs", "monthly_credits") else value
        print(f"{name + ':':<20} {shown}")


def show(args: argparse.Namespace) -> int:
    found = deployment.resolve(args)
    repo = KeyRepository(found.table_name)
    tenant = repo.get_tenant(args.tenant)
    if tenant is None:
        raise NotFoundError(f"no tenant {args.tenant}")
    _print(_describe(repo, found.table_name, tenant), args.json)
    return 0


def set_limits(args: argparse.Namespace) -> int:
    found = deployment.resolve(args)
    repo = KeyRepository(found.table_name)
    if repo.get_tenant(args.tenant) is None:
        raise NotFoundError(f"no tenant {args.tenant} (`kling-relay keys create` makes one)")
    tenant = provision_tenant(repo, args, limits_from(args))
    _print(_describe(repo, found.table_name, tenant), args.json)
    return 0


def usage(args: argparse.Namespace) -> int:
    with client() as relay:
        answer = relay.usage()
    print(json.dumps(answer.model_dump(mode="json"), indent=None if args.json else 2))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenants = commands.add_parser("tenants", help="a tenant's tier and caps (operator)").add_subparsers(
        dest="tenants_command", required=True
    )
    shown = tenants.add_parser("show", help="a tenant's tier, caps and what it uses this month")
    shown.add_argument("tenant", type=tenant_id)
    shown.add_argument("--json", action="store_true")
    shown.set_defaults(run=show)
    changed = tenants.add_parser("set", help="change a tenant's tier or caps (applies to the next request)")
    changed.add_argument("tenant", type=tenant_id)
    add_limit_arguments(changed)
    changed.add_argument("--json", action="store_true")
    changed.set_defaults(run=set_limits)
    for parser in (shown, changed):
        deployment.add_arguments(parser)

    used = commands.add_parser("usage", help="your limits and use this month (uses the API key, via the SDK)")
    used.add_argument("--json", action="store_true")
    used.set_defaults(run=run_guarded(usage))
