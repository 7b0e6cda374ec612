"""cdk-nag acknowledgments: every one names its rule (finding) and says why, on the narrowest construct."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

PACK_PREFIX = "AwsSolutions::"
# A reason short enough to be "n/a" or "not needed" explains nothing.
MIN_REASON_WORDS = 8


@dataclass(frozen=True)
class RecordedAcknowledgment:
    path: str
    rule: str
    reason: str


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding on `scope` and its children (`rule` like `AwsSolutions-IAM5[...]`)."""
    if not rule.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions rule: {rule}")
    if len(reason.split()) < MIN_REASON_WORDS:
        raise ValueError(f"acknowledgment of {rule} needs a reason of at least {MIN_REASON_WORDS} words")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=PACK_PREFIX + rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The logical ID cdk-nag uses to name a construct's resource inside a finding (`<Id.Arn>`)."""
    child = construct.node.default_child
    if not isinstance(child, cdk.CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return cdk.Stack.of(construct).get_logical_id(child)


def recorded(root: IConstruct) -> list[RecordedAcknowledgment]:
    """Every acknowledgment recorded under `root`, as CDK stores them (construct metadata)."""
    found: list[RecordedAcknowledgment] = []
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY and isinstance(entry.data, dict):
                found.extend(
                    RecordedAcknowledgment(construct.node.path, str(rule), str(reason))
                    for rule, reason in entry.data.items()
                )
    return found
