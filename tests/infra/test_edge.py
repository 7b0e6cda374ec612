"""Edge protection: the WAF web ACL on the stage, its rules and their order, and the callback route's throttle."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.edge import COUNTED_COMMON_RULES
from shared.models.request import MAX_METADATA_KEYS, MAX_PROMPT_CHARS, JobRequest
from tests.infra.synth import Synth, synthesize

# The Common Rule Set's SizeRestrictions_BODY blocks bodies over this many bytes.
COMMON_BODY_LIMIT = 8 * 1024


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


@pytest.fixture(scope="module")
def acl(synth: Synth) -> dict[str, Any]:
    (found,) = synth.of_type("AWS::WAFv2::WebACL").values()
    props: dict[str, Any] = found["Properties"]
    return props


def rules(acl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in acl["Rules"]}


def test_a_regional_web_acl_allowing_by_default_is_on_the_stage(synth: Synth, acl: dict[str, Any]) -> None:
    (acl_id,) = synth.of_type("AWS::WAFv2::WebACL")
    (association,) = synth.of_type("AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = synth.of_type("AWS::ApiGateway::Stage")
    (api_id,) = synth.of_type("AWS::ApiGateway::RestApi")

    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    stage_arn = json.dumps(association["Properties"]["ResourceArn"])
    assert f'"Ref": "{api_id}"' in stage_arn
    assert f'"Ref": "{stage_id}"' in stage_arn
    assert "/stages/" in stage_arn


def test_rules_in_order_rate_limits_first(acl: dict[str, Any]) -> None:
    ordered = [rule["Name"] for rule in sorted(acl["Rules"], key=lambda rule: rule["Priority"])]

    assert ordered == [
        "CallbackFloodPerIp",
        "FloodPerIp",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesCommonRuleSet",
    ]
    for rule in acl["Rules"]:
        assert rule["VisibilityConfig"] == {
            "CloudWatchMetricsEnabled": True,
            "MetricName": rule["Name"],
            "SampledRequestsEnabled": True,
        }


def test_per_ip_rate_limits_the_callback_one_tighter_and_scoped_to_callbacks(acl: dict[str, Any]) -> None:
    found = rules(acl)
    callback = found["CallbackFloodPerIp"]["Statement"]["RateBasedStatement"]
    everything = found["FloodPerIp"]["Statement"]["RateBasedStatement"]

    assert (callback["AggregateKeyType"], everything["AggregateKeyType"]) == ("IP", "IP")
    assert (callback["EvaluationWindowSec"], everything["EvaluationWindowSec"]) == (300, 300)
    assert callback["Limit"] < everything["Limit"]
    assert (callback["Limit"], everything["Limit"]) == (1500, 6000)
    assert "ScopeDownStatement" not in everything
    match = callback["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert (match["PositionalConstraint"], match["SearchString"]) == ("CONTAINS", "/callbacks/")
    assert match["TextTransformations"] == [{"Priority": 0, "Type": "URL_DECODE"}]


def test_rate_limited_requests_get_429_in_the_api_error_shape(acl: dict[str, Any]) -> None:
    for name in ("CallbackFloodPerIp", "FloodPerIp"):
        block = rules(acl)[name]["Action"]["Block"]["CustomResponse"]
        assert block["ResponseCode"] == 429
        assert {"Name": "Retry-After", "Value": "60"} in block["ResponseHeaders"]
        body = acl["CustomResponseBodies"][block["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert json.loads(body["Content"]) == {
            "error": {"code": "rate_limited", "message": "too many requests from this address"}
        }


def test_managed_rule_groups_block_except_the_body_rules_this_api_must_pass(acl: dict[str, Any]) -> None:
    found = rules(acl)
    bad_inputs = found["AWSManagedRulesKnownBadInputsRuleSet"]
    common = found["AWSManagedRulesCommonRuleSet"]

    for rule in (bad_inputs, common):
        assert rule["OverrideAction"] == {"None": {}}  # the group's own actions apply
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
    assert "RuleActionOverrides" not in bad_inputs["Statement"]["ManagedRuleGroupStatement"]
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert {o["Name"]: o["ActionToUse"] for o in overrides} == {rule: {"Count": {}} for rule in COUNTED_COMMON_RULES}
    assert "SizeRestrictions_BODY" in COUNTED_COMMON_RULES


def test_a_legitimate_job_body_is_larger_than_the_common_rule_sets_body_limit() -> None:
    """Why SizeRestrictions_BODY is counted: a request at our own limits, plain ASCII, is over 8 KB."""
    request = JobRequest(
        prompt="p" * MAX_PROMPT_CHARS,
        negative_prompt="n" * MAX_PROMPT_CHARS,
        metadata={f"k{i:02d}".ljust(40, "k"): "v" * 256 for i in range(MAX_METADATA_KEYS)},
        webhook_url="https://hooks.example.com/kling",  # type: ignore[arg-type]
    )
    body = request.model_dump_json(exclude_defaults=True).encode()

    assert len(body) > COMMON_BODY_LIMIT
    escaped = json.dumps({"prompt": "\U0001f98a" * MAX_PROMPT_CHARS}).encode()  # as ensure_ascii encoders send it
    assert len(escaped) > 3 * COMMON_BODY_LIMIT


def test_the_callback_route_has_its_own_lower_method_throttle(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in stage["Properties"]["MethodSettings"]}

    stage_wide = settings[("*", "/*")]
    callbacks = settings[("POST", "/~1callbacks~1{provider}~1{job_id}")]
    assert set(settings) == {("*", "/*"), ("POST", "/~1callbacks~1{provider}~1{job_id}")}
    assert (callbacks["ThrottlingRateLimit"], callbacks["ThrottlingBurstLimit"]) == (20, 40)
    assert callbacks["ThrottlingRateLimit"] < stage_wide["ThrottlingRateLimit"]
    assert callbacks["ThrottlingBurstLimit"] < stage_wide["ThrottlingBurstLimit"]
    # A method's own settings replace the stage's for that method: logging stays as it is everywhere else.
    assert (callbacks["LoggingLevel"], callbacks["DataTraceEnabled"]) == ("ERROR", False)


def test_waf_can_be_turned_off() -> None:
    off = synthesize({"relay:waf": "false"})

    assert off.of_type("AWS::WAFv2::WebACL") == {}
    assert off.of_type("AWS::WAFv2::WebACLAssociation") == {}
    assert off.stack.edge is None
