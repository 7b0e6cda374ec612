"""Explicit least-privilege statements. CDK's `grant_*` helpers add actions our code never calls, so the
statements a function gets are spelled out here and asserted action by action in tests/infra."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn

from infra.table_access import TABLE_ACCESS
from shared.repository import schema


def role_of(function: lambda_.Function) -> iam.IRole:
    if function.role is None:
        raise TypeError(f"{function.node.path} has no role")
    return function.role


def allow(function: lambda_.Function, actions: Sequence[str], resources: Sequence[str]) -> None:
    function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=list(resources)))


def table_items(function: lambda_.Function, table: dynamodb.ITable, name: str) -> None:
    """The table actions declared for the function `name`; its writes only to the partitions it declares."""
    access = TABLE_ACCESS[name]
    if access.reads:
        allow(function, [f"dynamodb:{op}" for op in access.reads], [table.table_arn])
    if access.writes:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{op}" for op in access.writes],
                resources=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": access.leading_keys}},
            )
        )


def owner_index_query(function: lambda_.Function, table: dynamodb.ITable) -> None:
    allow(function, ["dynamodb:Query"], [f"{table.table_arn}/index/{schema.GSI1}"])


def status_index_query(function: lambda_.Function, table: dynamodb.ITable) -> None:
    allow(function, ["dynamodb:Query"], [f"{table.table_arn}/index/{schema.GSI2}"])


def read_secrets(function: lambda_.Function, *secrets: secretsmanager.ISecret) -> None:
    allow(function, ["secretsmanager:GetSecretValue"], [secret.secret_arn for secret in secrets])


def objects(function: lambda_.Function, bucket: s3.IBucket, prefix: str, *actions: str) -> None:
    allow(function, [f"s3:{action}" for action in actions], [bucket.arn_for_objects(f"{prefix}*")])


def executions_arn(state_machine: sfn.StateMachine) -> str:
    """Every execution of one state machine (their names are job ids, unknown at deploy time)."""
    return cdk.Stack.of(state_machine).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine.state_machine_name}:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
