"""The tenant options `keys create` and `tenants set` share: tier and caps, and provisioning them."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from cli import deployment
from shared import aws
from shared.gateways.usage_plans import UsagePlans
from shared.models.tiers import TIER_NAME
from shared.repository.keys import KeyRepository, TenantLimits, TenantRecord
from shared.services.tenants import provision

UNLIMITED = "unlimited"


def _count(value: str) -> int | str:
    if value == UNLIMITED:
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number or {UNLIMITED!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _credits(value: str) -> float | str:
    if value == UNLIMITED:
        return value
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or {UNLIMITED!r}") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number, not negative")
    return number


def _tier(value: str) -> str:
    if not TIER_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"invalid tier {value!r}: lower-case letters, digits and '-'")
    return value


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-active", type=_count, metavar="N", help=f"unfinished jobs at once (or {UNLIMITED}, the default)"
    )
    parser.add_argument(
        "--monthly-credits", type=_credits, metavar="N", help=f"provider credits per month (or {UNLIMITED})"
    )
    parser.add_argument("--tier", type=_tier, help="usage plan tier (rate, burst, monthly requests)")


def limits_from(args: argparse.Namespace) -> tuple[TenantLimits, tuple[str, ...]]:
    """The caps to set and the ones to remove (`unlimited`)."""
    unlimited = tuple(
        field
        for field, value in (("max_active_jobs", args.max_active), ("monthly_credits", args.monthly_credits))
        if value == UNLIMITED
    )
    try:
        limits = TenantLimits(
            tier=args.tier,
            max_active_jobs=None if args.max_active in (None, UNLIMITED) else args.max_active,
            monthly_credits=None if args.monthly_credits in (None, UNLIMITED) else args.monthly_credits,
        )
    except ValidationError as exc:
        raise SystemExit(f"invalid limits: {exc}") from None
    return limits, unlimited


def provision_tenant(
    repo: KeyRepository, args: argparse.Namespace, limits: tuple[TenantLimits, tuple[str, ...]]
) -> TenantRecord:
    found = deployment.tiers(args)
    caps, unlimited = limits
    return provision(
        repo,
        UsagePlans(aws.new_client("apigateway")),
        found.plan_ids,
        args.tenant,
        caps,
        default_tier=found.default_tier,
        unlimited=unlimited,
    )
