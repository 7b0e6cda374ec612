"""cdk-nag AwsSolutions: the stack synthesizes with no open finding, and every acknowledgment says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.nag import MIN_REASON_WORDS, PACK_PREFIX, acknowledge, recorded
from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def nagged() -> Synth:
    return synthesize(nag=True)


@pytest.fixture(scope="module")
def report(nagged: Synth) -> dict[str, Any]:
    # Raises ValidationFailed if any finding is not acknowledged (or a CloudFormation default rule fails).
    assembly = nagged.app.synth()
    loaded: dict[str, Any] = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    return loaded


def aws_solutions(report: dict[str, Any]) -> dict[str, Any]:
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    return dict(plugin)


def test_no_open_findings(report: dict[str, Any]) -> None:
    plugin = aws_solutions(report)

    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    assert plugin["suppressedViolations"]  # the checks really ran


def test_every_acknowledgment_has_a_real_reason(nagged: Synth) -> None:
    acknowledgments = recorded(nagged.stack)

    assert acknowledgments
    reasons = [a.reason for a in acknowledgments]
    for ack in acknowledgments:
        assert len(ack.reason.split()) >= MIN_REASON_WORDS, ack
        assert ack.rule.startswith(PACK_PREFIX + "AwsSolutions-"), ack
        assert ack.reason.rstrip().endswith("."), ack
    # One reason pasted everywhere would explain nothing; shared reasons are the same finding on like resources.
    assert len(set(reasons)) >= 10


def test_every_acknowledgment_suppresses_a_finding(nagged: Synth, report: dict[str, Any]) -> None:
    used = {(s["acknowledgedAt"], s["acknowledgedId"]) for s in aws_solutions(report)["suppressedViolations"]}

    unused = [a for a in recorded(nagged.stack) if (a.path, a.rule) not in used]

    assert unused == []


def test_acknowledged_rules_are_the_expected_ones(report: dict[str, Any]) -> None:
    rules = {s["ruleName"].split("[")[0] for s in aws_solutions(report)["suppressedViolations"]}

    # Anything new here needs a decision: fix it, or acknowledge it with a reason.
    # No APIG3: the stage has a WAF web ACL (relay:waf, on by default).
    assert rules == {
        "AwsSolutions-APIG4",
        "AwsSolutions-CFR1",
        "AwsSolutions-CFR2",
        "AwsSolutions-CFR4",
        "AwsSolutions-COG4",
        "AwsSolutions-IAM4",
        "AwsSolutions-IAM5",
        "AwsSolutions-L1",
        "AwsSolutions-SMG4",
        "AwsSolutions-SQS3",
    }


def test_without_waf_the_missing_web_acl_is_acknowledged_and_nothing_else_opens() -> None:
    nagged = synthesize({"relay:waf": "false"}, nag=True)
    assembly = nagged.app.synth()
    report: dict[str, Any] = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    plugin = aws_solutions(report)

    assert plugin["violations"] == []
    assert "AwsSolutions-APIG3" in {s["ruleName"] for s in plugin["suppressedViolations"]}
    assert nagged.of_type("AWS::WAFv2::WebACL") == {}
    assert nagged.of_type("AWS::WAFv2::WebACLAssociation") == {}


def test_the_gate_fails_on_an_unacknowledged_finding_and_passes_once_acknowledged() -> None:
    def bare_bucket_app(reason: str | None) -> cdk.App:
        app = cdk.App()
        stack = cdk.Stack(app, "Probe")
        bucket = s3.Bucket(stack, "Bare", enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
        if reason:
            acknowledge(bucket, "AwsSolutions-S1", reason)
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        return app

    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-S1"):
        bare_bucket_app(None).synth()
    bare_bucket_app("A probe bucket in a test that only checks the gate and is never deployed.").synth()


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("AwsSolutions-S1", "not needed"),
        ("AwsSolutions-S1", ""),
        ("S1", "A reason that is long enough to pass the word count rule here."),
    ],
)
def test_acknowledge_refuses_empty_reasons_and_foreign_rules(rule: str, reason: str) -> None:
    stack = cdk.Stack(cdk.App(), "Probe")

    with pytest.raises(ValueError, match=r"reason|rule"):
        acknowledge(stack, rule, reason)
