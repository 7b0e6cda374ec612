"""Each function has its own role, and the role grants exactly what the function's code calls."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from infra.storage import ARCHIVE_PREFIX
from infra.table_access import OPERATOR_PARTITIONS, TABLE_ACCESS, partition_prefix
from shared.repository import schema
from tests.infra.synth import FUNCTIONS, Synth, render, synthesize

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
DLQ_SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


@pytest.fixture(scope="module")
def refs(synth: Synth) -> dict[str, str]:
    stack = synth.stack
    table = synth.ref(stack.storage.table, "Arn")
    bucket = synth.ref(stack.storage.bucket, "Arn")
    machine = stack.workflow.state_machine
    return {
        "table": table,
        "index": f"{table}/index/{schema.GSI1}",
        "status_index": f"{table}/index/{schema.GSI2}",
        "stream": synth.ref(stack.storage.table, "StreamArn"),
        "objects": f"{bucket}/{ARCHIVE_PREFIX}*",
        "bucket": bucket,
        "machine": synth.ref(machine),
        "executions": "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"{synth.ref(machine, 'Name')}:*",
        "provider_secret": synth.ref(stack.secrets.provider_keys),
        "signing_secret": synth.ref(stack.secrets.signing_key),
        "topic": synth.ref(stack.notifications.events_topic),
        "deliveries": synth.ref(stack.notifications.deliveries, "Arn"),
        "archive_dlq": synth.ref(stack.pipeline.archive_failures, "Arn"),
        "notify_dlq": synth.ref(stack.pipeline.notify_failures, "Arn"),
        **{
            f"usage_{tier}": f"arn:<AWS::Partition>:apigateway:<AWS::Region>::/usageplans/{synth.ref(plan)}/usage"
            for tier, plan in stack.api.usage_plans.items()
        },
    }


def own_logs(synth: Synth, function: str) -> dict[str, set[str]]:
    """Each function writes only to its own log group."""
    log_group = synth.function(function)["LoggingConfig"]["LogGroup"]["Ref"]
    return {f"<{log_group}.Arn>": LOGS}


def expected_permissions(refs: dict[str, str]) -> dict[str, dict[str, set[str]]]:
    return {
        "api": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
            refs["index"]: {"dynamodb:Query"},
            refs["status_index"]: {"dynamodb:Query"},
            refs["machine"]: {"states:StartExecution"},
            refs["executions"]: {"states:StopExecution"},
            refs["provider_secret"]: {"secretsmanager:GetSecretValue"},
            refs["signing_secret"]: {"secretsmanager:GetSecretValue"},
            refs["objects"]: {"s3:GetObject"},
            # GET /usage: what a tenant's key used under its tier's usage plan.
            **{ref: {"apigateway:GET"} for name, ref in refs.items() if name.startswith("usage_")},
        },
        "authorizer": {refs["table"]: {"dynamodb:GetItem"}},
        "callback": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem"},
            refs["provider_secret"]: {"secretsmanager:GetSecretValue"},
            refs["signing_secret"]: {"secretsmanager:GetSecretValue"},
        },
        "dispatch": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
            refs["provider_secret"]: {"secretsmanager:GetSecretValue"},
            refs["signing_secret"]: {"secretsmanager:GetSecretValue"},
        },
        "poll": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem"},
            refs["provider_secret"]: {"secretsmanager:GetSecretValue"},
        },
        "archive": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem"},
            refs["objects"]: {
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:PutObjectTagging",
                "s3:GetObject",
                "s3:GetObjectTagging",
                "s3:DeleteObject",
            },
            refs["bucket"]: {"s3:ListBucket"},
            refs["stream"]: STREAM_READ,
            "*": XRAY | {"dynamodb:ListStreams"},
            refs["archive_dlq"]: DLQ_SEND,
        },
        "notify": {
            refs["topic"]: {"sns:Publish"},
            refs["table"]: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
            refs["stream"]: STREAM_READ,
            "*": XRAY | {"dynamodb:ListStreams"},
            refs["notify_dlq"]: DLQ_SEND,
        },
        "deliver": {
            refs["table"]: {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
            refs["signing_secret"]: {"secretsmanager:GetSecretValue"},
            refs["deliveries"]: {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            },
        },
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_role_grants_exactly_what_the_function_calls(synth: Synth, refs: dict[str, str], function: str) -> None:
    expected = {"*": XRAY, **own_logs(synth, function), **expected_permissions(refs)[function]}

    assert synth.function_permissions(function) == expected


def test_every_function_has_its_own_role_without_managed_policies(synth: Synth) -> None:
    roles = {name: synth.role_id(name) for name in FUNCTIONS}

    assert len(set(roles.values())) == len(FUNCTIONS)
    for role_id in roles.values():
        props = synth.resources[role_id]["Properties"]
        assert "ManagedPolicyArns" not in props
        assert "Policies" not in props
        assert props["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


def test_workflow_role_invokes_only_the_dispatch_and_poll_functions(synth: Synth) -> None:
    machine = synth.of_type("AWS::StepFunctions::StateMachine")
    (props,) = (m["Properties"] for m in machine.values())
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    poll = f"<{synth.function_id('poll')}.Arn>"
    dispatch = f"<{synth.function_id('dispatch')}.Arn>"

    granted = synth.permissions(role_id)

    for function in (poll, dispatch):
        assert granted[function] == {"lambda:InvokeFunction"}
        assert granted[f"{function}:*"] == {"lambda:InvokeFunction"}
    assert {resource for resource, actions in granted.items() if "lambda:InvokeFunction" in actions} == {
        poll,
        f"{poll}:*",
        dispatch,
        f"{dispatch}:*",
    }
    # Vended log delivery and X-Ray support no resource-level permissions.
    assert granted["*"] == XRAY | {"xray:GetSamplingRules", "xray:GetSamplingTargets"} | {
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
    }
    assert set(granted) == {poll, f"{poll}:*", dispatch, f"{dispatch}:*", "*"}


def test_only_api_gateway_may_invoke_the_http_functions(synth: Synth) -> None:
    permissions = synth.of_type("AWS::Lambda::Permission").values()
    by_function: dict[str, set[str]] = {}
    for permission in permissions:
        props = permission["Properties"]
        assert props["Action"] == "lambda:InvokeFunction"
        target = props["FunctionName"]["Fn::GetAtt"][0]
        by_function.setdefault(target, set()).add(props["Principal"])

    assert by_function == {
        synth.function_id("api"): {"apigateway.amazonaws.com"},
        synth.function_id("authorizer"): {"apigateway.amazonaws.com"},
        synth.function_id("callback"): {"apigateway.amazonaws.com"},
    }


# -- writes held to their partitions (dynamodb:LeadingKeys) ----------------------------------------------------

TABLE_WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
# What each function's code writes, by partition prefix (the partitions behind them are in `test_every_partition_
# the_repository_writes_is_declared` below).
WRITES = {
    "api": ["IDEM#*", "JOB#*", "TASK#*", "USAGE#*"],
    "notify": ["PACE#*", "SETTLED#*", "USAGE#*"],
    "callback": ["JOB#*", "TASK#*"],
    "dispatch": ["JOB#*", "PACE#*", "TASK#*"],
    "poll": ["JOB#*"],
    "archive": ["JOB#*"],
    "deliver": ["WEBHOOK#*"],
}


def table_write_statements(synth: Synth, refs: dict[str, str], function: str) -> list[dict[str, Any]]:
    found = []
    for statement in synth.statements(synth.role_id(function)):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if TABLE_WRITE_ACTIONS & set(actions) and refs["table"] in {render(r) for r in resources}:
            found.append(statement)
    return found


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_writes_the_table_only_under_its_own_partitions(
    synth: Synth, refs: dict[str, str], function: str
) -> None:
    statements = table_write_statements(synth, refs, function)

    if function not in WRITES:
        assert statements == []
        return
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert set(actions) <= TABLE_WRITE_ACTIONS, "reads are granted apart from the conditioned writes"
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": WRITES[function]}}
    assert statements


def test_the_declared_writes_are_what_the_roles_carry() -> None:
    declared = {name: access.leading_keys for name, access in TABLE_ACCESS.items() if access.writes}

    assert declared == WRITES


def _table_partition_builders(module: ast.Module) -> set[str]:
    """The `schema.*` key builders whose keys a module uses as the table's partition key (`schema.PK: ...`),
    followed through a local name (`pk = schema.x(...)`) or a property (`claim.pk`)."""
    builders: set[str] = set()
    definitions: dict[str, list[ast.AST]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    definitions.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.FunctionDef):
            definitions.setdefault(node.name, []).append(node)

    def schema_calls(node: ast.AST) -> set[str]:
        return {
            call.func.attr
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "schema"
        }

    for node in ast.walk(module):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Attribute) and key.attr == "PK" and isinstance(value, ast.expr)):
                continue
            found = schema_calls(value)
            if not found:
                name = ast.unparse(value).rsplit(".", 1)[-1]
                for definition in definitions.get(name, []):
                    found |= schema_calls(definition)
            assert found, f"cannot tell which key builder makes {ast.unparse(value)}"
            builders |= found
    return builders


def test_every_partition_the_repository_writes_is_declared() -> None:
    """Every partition key the repository (and the pacer) builds is granted to the functions that write it, or
    written by the operator only; and every partition granted is one they build."""
    shared = Path(__file__).resolve().parents[2] / "shared"
    used = set()
    for path in sorted([*(shared / "repository").glob("*.py"), *(shared / "pacing").glob("*.py")]):
        used |= _table_partition_builders(ast.parse(path.read_text()))
    used_prefixes = {partition_prefix(getattr(schema, name)) for name in used}
    granted = {partition_prefix(b) for access in TABLE_ACCESS.values() for b in access.partitions}
    operator = {partition_prefix(b) for b in OPERATOR_PARTITIONS}

    assert used >= {
        "job_pk",
        "idempotency_pk",
        "task_claim_pk",
        "endpoint_pk",
        "apikey_pk",
        "tenant_pk",
        "tenant_usage_pk",
        "settlement_pk",
        "pace_pk",
    }
    assert used_prefixes == granted | operator
    assert not granted & operator, "a partition the operator alone writes is granted to a function"
