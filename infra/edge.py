"""Edge protection: a WAFv2 web ACL on the API stage (context `relay:waf`, on by default).

Rules, in the order WAF evaluates them:
1. `CallbackFloodPerIp`: one source IP sending more than `relay:waf_callback_ip_limit` requests to
   `/callbacks/...` in 5 minutes is blocked there (429). Providers call back about once per job, so a higher
   rate from one address is junk, and a blocked genuine callback only leaves its job to the poller.
2. `FloodPerIp`: more than `relay:waf_ip_limit` requests from one IP to any route in 5 minutes (429).
3. AWS managed Known Bad Inputs (Log4j and Java deserialization payloads, `localhost` Host headers, ...).
4. AWS managed Common Rule Set, with the body rules that refuse legitimate requests of this API counted
   instead of blocked (see `COUNTED_COMMON_RULES`): their matches still show in the rule's metrics.

API Gateway's own throttles (the stage's per method, the callback route's lower one) still apply after WAF.
"""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import RelayConfig

RATE_WINDOW_SECONDS = 300
RATE_LIMITED_BODY = "rate_limited"
# Rules of AWSManagedRulesCommonRuleSet that would block requests this API must accept, each with the reason.
COUNTED_COMMON_RULES: dict[str, str] = {
    # The rule blocks bodies over 8 KB. A job request at our own field limits in plain ASCII is about 9.7 KB
    # (prompt and negative prompt 2,500 characters each, 16 metadata entries of 40 + 256), and JSON-escaped
    # non-Latin text several times that; callback bodies are accepted up to 256 KB (KR_MAX_CALLBACK_BYTES).
    # Sizes are enforced where they are known: API Gateway's 10 MB cap, the callback function's limit, and
    # the request model's field limits in the api function.
    "SizeRestrictions_BODY": "legitimate job and callback bodies exceed 8 KB",
    # first_frame_url, last_frame_url and webhook_url may be public URLs with an IP address for a host; the
    # URL guard checks every one (https, public addresses only) where it is used.
    "GenericRFI_BODY": "job bodies legitimately carry URLs, some with IP-address hosts",
    # Prompts and metadata are free text, never rendered as HTML nor used as a path by this API; a prompt that
    # mentions a script tag or a `../` path is a legitimate prompt.
    "CrossSiteScripting_BODY": "prompts are free text never rendered as HTML",
    "GenericLFI_BODY": "prompts are free text never used as a path",
}


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


def _rate_limited() -> wafv2.CfnWebACL.RuleActionProperty:
    return wafv2.CfnWebACL.RuleActionProperty(
        block=wafv2.CfnWebACL.BlockActionProperty(
            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                response_code=429,
                custom_response_body_key=RATE_LIMITED_BODY,
                response_headers=[wafv2.CfnWebACL.CustomHTTPHeaderProperty(name="Retry-After", value="60")],
            )
        )
    )


def _managed(name: str, priority: int, counted: dict[str, str] | None = None) -> wafv2.CfnWebACL.RuleProperty:
    count = wafv2.CfnWebACL.RuleActionProperty(count={})
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(name=rule, action_to_use=count) for rule in counted
                ]
                if counted
                else None,
            )
        ),
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        visibility_config=_visibility(name),
    )


class EdgeProtection(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: RelayConfig, stage: apigw.Stage) -> None:
        super().__init__(scope, construct_id)
        callbacks = wafv2.CfnWebACL.StatementProperty(
            byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                positional_constraint="CONTAINS",
                search_string="/callbacks/",
                # A percent-encoded path reaches the same route, so it must count against the same limit.
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE")],
            )
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            description="Kling Relay API: per-IP rate limits and AWS managed rules",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("KlingRelayApi"),
            custom_response_bodies={
                RATE_LIMITED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=json.dumps(
                        {"error": {"code": "rate_limited", "message": "too many requests from this address"}}
                    ),
                )
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="CallbackFloodPerIp",
                    priority=0,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=config.waf_callback_ip_limit,
                            evaluation_window_sec=RATE_WINDOW_SECONDS,
                            scope_down_statement=callbacks,
                        )
                    ),
                    action=_rate_limited(),
                    visibility_config=_visibility("CallbackFloodPerIp"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="FloodPerIp",
                    priority=1,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=config.waf_ip_limit,
                            evaluation_window_sec=RATE_WINDOW_SECONDS,
                        )
                    ),
                    action=_rate_limited(),
                    visibility_config=_visibility("FloodPerIp"),
                ),
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                _managed("AWSManagedRulesCommonRuleSet", 3, COUNTED_COMMON_RULES),
            ],
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "StageAssociation", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
