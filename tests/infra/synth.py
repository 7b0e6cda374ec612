"""Synthesizes the stack for assertion tests (bundling skipped) and reads the template back in our terms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.build import build_app
from infra.lambda_defaults import handler_path
from infra.stack import KlingRelayStack

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
FUNCTIONS = ("api", "authorizer", "callback", "dispatch", "poll", "archive", "notify", "deliver")


def synthesize(context: Mapping[str, Any] | None = None, *, nag: bool = False) -> Synth:
    """The stack as `cdk synth` builds it (cdk.json's flags), minus bundling; `nag` adds the AwsSolutions checks."""
    app, stack = build_app({**NO_BUNDLING, **(context or {})}, nag=nag)
    return Synth(app, stack)


def render(value: Any) -> str:
    """An intrinsic as a readable string: Ref -> `<Id>`, GetAtt -> `<Id.Attr>`, Join -> concatenation."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(render(part) for part in parts)
    return json.dumps(value, sort_keys=True)


@dataclass
class Synth:
    app: cdk.App
    stack: KlingRelayStack

    @cached_property
    def template(self) -> Template:
        return Template.from_stack(self.stack)

    @cached_property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.json["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: IConstruct) -> str:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement), construct.node.path
        return self.stack.get_logical_id(child)

    def ref(self, construct: IConstruct, attribute: str | None = None) -> str:
        """How `render` shows a reference to `construct`'s resource."""
        logical = self.logical_id(construct)
        return f"<{logical}.{attribute}>" if attribute else f"<{logical}>"

    def function_id(self, name: str) -> str:
        matches = [
            k
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if v["Properties"]["Handler"] == handler_path(name)
        ]
        assert len(matches) == 1, f"{name}: {matches}"
        return matches[0]

    def console_deployment_function_id(self) -> str:
        """The CDK's bucket deployment function (it copies the console's files into their bucket)."""
        (found,) = [k for k in self.of_type("AWS::Lambda::Function") if k.startswith("CustomCDKBucketDeployment")]
        return found

    def function(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.function_id(name)]["Properties"]
        return props

    def role_id(self, function_name: str) -> str:
        role = self.function(function_name)["Role"]
        return str(role["Fn::GetAtt"][0])

    def statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of the role's policies."""
        found: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            props = policy["Properties"]
            if {"Ref": role_id} in props["Roles"]:
                found.extend(props["PolicyDocument"]["Statement"])
        return found

    def permissions(self, role_id: str) -> dict[str, set[str]]:
        """Every Allow the role's policies grant, as {rendered resource: actions} (conditions aside: the only
        one allowed is the table's `dynamodb:LeadingKeys`, asserted in tests/infra/test_permissions.py)."""
        granted: dict[str, set[str]] = {}
        for statement in self.statements(role_id):
            assert statement["Effect"] == "Allow"
            assert set(statement.get("Condition", {})) <= {"ForAllValues:StringLike"}, statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                granted.setdefault(render(resource), set()).update(actions)
        return granted

    def function_permissions(self, name: str) -> dict[str, set[str]]:
        return self.permissions(self.role_id(name))

    def environment(self, name: str) -> dict[str, Any]:
        variables: dict[str, Any] = self.function(name)["Environment"]["Variables"]
        return variables
