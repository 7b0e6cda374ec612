"""Finding a deployment's table and secrets: flags, then KR_* variables, then the stack's outputs."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from infra.names import STACK_NAME
from shared import aws
from shared.gateways.usage_plans import UsagePlans
from shared.models.tiers import DEFAULT_TIER
from shared.settings import env_name

DEFAULT_STACK = STACK_NAME


class DeploymentNotFound(Exception):
    pass


@dataclass(frozen=True)
class Deployment:
    table_name: str
    signing_secret_name: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", default=os.environ.get("KLING_RELAY_STACK", DEFAULT_STACK), help="CloudFormation stack"
    )
    parser.add_argument("--table", help=f"jobs table (default: ${env_name('table_name')} or the stack output)")
    parser.add_argument("--signing-secret", help=f"signing secret (default: ${env_name('signing_secret_name')})")


def _stack_outputs(stack: str) -> dict[str, str]:
    try:
        described = aws.new_client("cloudformation").describe_stacks(StackName=stack)
    except (ClientError, BotoCoreError) as exc:
        raise DeploymentNotFound(f"cannot read stack {stack}: {exc}") from exc
    outputs = described["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def resolve(args: argparse.Namespace) -> Deployment:
    table = args.table or os.environ.get(env_name("table_name"))
    signing = args.signing_secret or os.environ.get(env_name("signing_secret_name"))
    if not (table and signing):
        outputs = _stack_outputs(args.stack)
        table = table or outputs.get("TableName")
        signing = signing or outputs.get("SigningSecretName")
    if not (table and signing):
        raise DeploymentNotFound(f"stack {args.stack} has no TableName/SigningSecretName outputs")
    return Deployment(table_name=table, signing_secret_name=signing)


@dataclass(frozen=True)
class Tiers:
    plan_ids: dict[str, str]  # tier -> usage plan id
    default_tier: str


def tiers(args: argparse.Namespace) -> Tiers:
    """The stack's tier usage plans (found by name) and its default tier (its output, else the built-in one)."""
    try:
        plan_ids = UsagePlans(aws.new_client("apigateway")).find_plans(args.stack)
    except (ClientError, BotoCoreError) as exc:
        raise DeploymentNotFound(f"cannot read the usage plans of stack {args.stack}: {exc}") from exc
    try:
        default = _stack_outputs(args.stack).get("DefaultTier") or DEFAULT_TIER
    except DeploymentNotFound:
        default = DEFAULT_TIER
    return Tiers(plan_ids=plan_ids, default_tier=default)
