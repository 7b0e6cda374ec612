"""Deployment configuration from CDK context: parsing, errors, and what each option changes in the stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ARCHIVE_GRACE_SECONDS, POLLER_MARGIN_SECONDS, InvalidContextError, RelayConfig
from shared.settings import env_name
from tests.infra.synth import Synth, synthesize

OVERRIDES = {
    # As `cdk deploy -c key=value` passes them: strings.
    "relay:enabled_providers": "kie,vidgo,apimart",
    "relay:provider_order": "apimart, kie",
    "relay:job_deadline_seconds": "7200",
    "relay:job_retention_days": "90",
    "relay:video_expiry_days": "20",
    "relay:max_video_bytes": "1048576",
    "relay:log_retention_days": "90",
    "relay:api_throttle_rate": "5",
    "relay:api_throttle_burst": "10",
    "relay:api_cloudwatch_role": "false",
    "relay:alarm_email": "ops@example.com",
    "relay:failure_rate_alarm_percent": "35",
    "relay:callbacks_rejected_alarm_threshold": "3",
    "relay:console": "false",
    "relay:callback_throttle_rate": "2",
    "relay:callback_throttle_burst": "4",
    "relay:authorizer_cache_seconds": "15",
    "relay:waf_ip_limit": "900",
    "relay:waf_callback_ip_limit": "120",
}


class Context:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def try_get_context(self, key: str) -> Any:
        return self.values.get(key)


def parse(values: dict[str, Any]) -> RelayConfig:
    return RelayConfig.from_context(Context(values), list(values))


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize(OVERRIDES)


def test_defaults() -> None:
    config = parse({})

    assert config.provider_order == ("vidgo", "kie", "aimlapi", "pixwith", "apimart")
    assert config.enabled_providers == config.provider_order
    assert (config.job_deadline_seconds, config.job_retention_days, config.video_expiry_days) == (3600, 0, 0)
    assert config.log_retention_days == 30
    assert config.alarm_email is None
    assert config.api_cloudwatch_role is True
    assert config.console is True
    assert config.snapstart is False
    assert (config.waf, config.waf_ip_limit, config.waf_callback_ip_limit) == (True, 6000, 1500)
    assert config.authorizer_cache_seconds == 60
    assert (config.callback_throttle_rate, config.callback_throttle_burst) == (20, 40)


def test_command_line_strings_are_parsed() -> None:
    config = parse(OVERRIDES)

    assert config.enabled_providers == ("kie", "vidgo", "apimart")
    assert config.provider_order == ("apimart", "kie")
    assert config.job_deadline_seconds == 7200
    assert config.api_cloudwatch_role is False
    assert config.console is False
    assert config.poller_timeout_seconds == 7200 + ARCHIVE_GRACE_SECONDS + POLLER_MARGIN_SECONDS


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"relay:provider_order": "kie,kling"}, "relay:provider_order"),
        ({"relay:enabled_providers": "kie,kie"}, "relay:enabled_providers"),
        ({"relay:enabled_providers": ""}, "relay:enabled_providers"),
        ({"relay:job_deadline_seconds": "30"}, "relay:job_deadline_seconds"),
        ({"relay:job_deadline_seconds": "soon"}, "relay:job_deadline_seconds"),
        ({"relay:log_retention_days": "45"}, "relay:log_retention_days"),
        ({"relay:alarm_email": "not-an-address"}, "relay:alarm_email"),
        ({"relay:max_video_bytes": "10"}, "relay:max_video_bytes"),
        ({"relay:deadline": "3600"}, "relay:deadline"),
        ({"relay:console": "maybe"}, "relay:console"),
        ({"relay:snapstart": "sometimes"}, "relay:snapstart"),
        ({"relay:waf": "maybe"}, "relay:waf"),
        ({"relay:waf_ip_limit": "5"}, "relay:waf_ip_limit"),
        ({"relay:waf_callback_ip_limit": "0"}, "relay:waf_callback_ip_limit"),
        ({"relay:authorizer_cache_seconds": "3601"}, "relay:authorizer_cache_seconds"),
        ({"relay:authorizer_cache_seconds": "-1"}, "relay:authorizer_cache_seconds"),
        ({"relay:callback_throttle_rate": "0"}, "relay:callback_throttle_rate"),
        ({"relay:callback_throttle_burst": "0"}, "relay:callback_throttle_burst"),
    ],
)
def test_bad_context_names_the_key(values: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidContextError) as raised:
        parse(values)

    assert named in str(raised.value)


def test_other_context_keys_are_not_ours_to_check() -> None:
    assert parse({"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:bundling-stacks": []}) == parse({})


def test_routing_and_deadlines_reach_the_functions(synth: Synth) -> None:
    api = synth.environment("api")

    assert api[env_name("enabled_providers")] == "kie,vidgo,apimart"
    assert api[env_name("provider_order")] == "apimart,kie"
    assert api[env_name("job_deadline_seconds")] == "7200"
    for function in ("api", "callback", "poll", "archive"):
        assert synth.environment(function)[env_name("job_retention_days")] == "90"
    assert synth.environment("archive")[env_name("max_video_bytes")] == "1048576"


def test_poller_timeout_follows_the_deadline(synth: Synth) -> None:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()

    assert f'"TimeoutSeconds":{7200 + ARCHIVE_GRACE_SECONDS + POLLER_MARGIN_SECONDS}' in str(
        machine["Properties"]["DefinitionString"]
    )


def test_short_video_expiry_skips_the_infrequent_access_move(synth: Synth) -> None:
    videos = synth.resources[synth.logical_id(synth.stack.storage.bucket)]
    (rule,) = videos["Properties"]["LifecycleConfiguration"]["Rules"]

    assert rule["ExpirationInDays"] == 20
    assert "Transitions" not in rule


def test_log_retention_throttling_and_alarms(synth: Synth) -> None:
    retention = {g["Properties"]["RetentionInDays"] for g in synth.of_type("AWS::Logs::LogGroup").values()}
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    settings, callbacks = stage["Properties"]["MethodSettings"]
    alarms = {
        name: synth.resources[synth.logical_id(alarm)]["Properties"]
        for name, alarm in synth.stack.observability.alarms.items()
    }

    assert retention == {90}
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (5, 10)
    assert callbacks["ResourcePath"] == "/~1callbacks~1{provider}~1{job_id}"
    assert (callbacks["ThrottlingRateLimit"], callbacks["ThrottlingBurstLimit"]) == (2, 4)
    assert alarms["JobFailureRate"]["Threshold"] == 35
    assert alarms["CallbacksRejected"]["Threshold"] == 3


def test_alarm_email_subscribes_to_the_alarm_topic(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.observability.alarms_topic)}

    emails = [
        s["Properties"]
        for s in synth.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == topic
    ]

    assert emails == [{"Endpoint": "ops@example.com", "Protocol": "email", "TopicArn": topic}]


def test_api_gateway_logging_role_can_be_left_to_the_account(synth: Synth) -> None:
    assert synth.of_type("AWS::ApiGateway::Account") == {}
    for role in synth.of_type("AWS::IAM::Role").values():
        principals = json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        assert "apigateway.amazonaws.com" not in principals


def test_without_the_console_nothing_of_it_is_deployed_and_cors_is_as_before(synth: Synth) -> None:
    types = {r["Type"] for r in synth.resources.values()}

    assert not [t for t in types if t.startswith(("AWS::CloudFront::", "Custom::"))]
    assert "ConsoleUrl" not in synth.json["Outputs"]
    assert env_name("cors_allow_origin") not in synth.environment("api")
    for response in synth.of_type("AWS::ApiGateway::GatewayResponse").values():
        assert "ResponseParameters" not in response["Properties"]


def test_authorizer_cache_and_waf_limits_follow_the_context(synth: Synth) -> None:
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    (acl,) = synth.of_type("AWS::WAFv2::WebACL").values()
    limits = {
        rule["Name"]: rule["Statement"]["RateBasedStatement"]["Limit"]
        for rule in acl["Properties"]["Rules"]
        if "RateBasedStatement" in rule["Statement"]
    }

    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 15
    assert limits == {"CallbackFloodPerIp": 120, "FloodPerIp": 900}


def test_an_authorizer_cache_of_zero_asks_on_every_request() -> None:
    (authorizer,) = synthesize({"relay:authorizer_cache_seconds": "0"}).of_type("AWS::ApiGateway::Authorizer").values()
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 0
