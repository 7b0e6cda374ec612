"""Alarms and where they go; stack outputs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.synth import FUNCTIONS, Synth, synthesize

CUSTOM_DIMENSIONS = [{"Name": "service", "Value": "kling-relay"}]


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


@pytest.fixture(scope="module")
def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    found = synth.stack.observability.alarms
    return {name: synth.resources[synth.logical_id(alarm)]["Properties"] for name, alarm in found.items()}


def metric_stats(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric id -> MetricStat of a metric-math alarm."""
    return {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}


def expression(alarm: dict[str, Any]) -> str:
    (expr,) = [m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData", True) and "Expression" in m]
    return str(expr)


def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_recovery(synth: Synth, alarms: dict[str, Any]) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.observability.alarms_topic)}

    assert alarms
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic]
        assert alarm["OKActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"]


def test_any_message_in_any_dead_letter_queue_alarms(synth: Synth, alarms: dict[str, Any]) -> None:
    stack = synth.stack
    queues = {**stack.pipeline.dead_letter_queues, **stack.notifications.dead_letter_queues}

    assert len(queues) == 4
    for name, queue in queues.items():
        alarm = alarms[f"{name}NotEmpty"]
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(queue), "QueueName"]}}
        ]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_failure_rate_is_failed_and_timed_out_over_finished_jobs(alarms: dict[str, Any]) -> None:
    alarm = alarms["JobFailureRate"]
    stats = metric_stats(alarm)

    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"JobsSucceeded", "JobsFailed", "JobsTimedOut"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "KlingRelay"
        assert stat["Metric"]["Dimensions"] == CUSTOM_DIMENSIONS
        assert stat["Stat"] == "Sum"
        assert stat["Period"] == 900
    total = "FILL(succeeded, 0) + FILL(failed, 0) + FILL(timedOut, 0)"
    assert expression(alarm) == f"IF(({total}) >= 5, 100 * (FILL(failed, 0) + FILL(timedOut, 0)) / ({total}), 0)"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (20, "GreaterThanThreshold")


def test_a_burst_of_rejected_callbacks_alarms(alarms: dict[str, Any]) -> None:
    alarm = alarms["CallbacksRejected"]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("KlingRelay", "CallbacksRejected", "Sum")
    assert alarm["Dimensions"] == CUSTOM_DIMENSIONS
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (10, "GreaterThanOrEqualToThreshold")


def test_a_paused_webhook_endpoint_alarms(alarms: dict[str, Any]) -> None:
    alarm = alarms["WebhookEndpointsPaused"]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "KlingRelay",
        "WebhookEndpointsPaused",
        "Sum",
    )
    assert alarm["Dimensions"] == CUSTOM_DIMENSIONS
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["Period"] == 300


def test_throttling_of_any_function_or_the_table_alarms(synth: Synth, alarms: dict[str, Any]) -> None:
    lambdas = metric_stats(alarms["LambdaThrottles"])
    table = metric_stats(alarms["TableThrottles"])

    assert {s["Metric"]["MetricName"] for s in lambdas.values()} == {"Throttles"}
    assert sorted(s["Metric"]["Dimensions"][0]["Value"]["Ref"] for s in lambdas.values()) == sorted(
        synth.function_id(name) for name in FUNCTIONS
    )
    assert alarms["LambdaThrottles"]["Threshold"] == 0
    assert sorted((s["Metric"]["MetricName"], len(s["Metric"]["Dimensions"])) for s in table.values()) == [
        ("ReadThrottleEvents", 1),
        ("ReadThrottleEvents", 2),
        ("ReadThrottleEvents", 2),
        ("WriteThrottleEvents", 1),
        ("WriteThrottleEvents", 2),
        ("WriteThrottleEvents", 2),
    ]
    indexes = {d["Value"] for s in table.values() for d in s["Metric"]["Dimensions"] if d["Name"] != "TableName"}
    assert indexes == {"by_owner", "by_status"}
    assert alarms["TableThrottles"]["Threshold"] == 0


def test_a_failed_or_timed_out_poller_alarms(alarms: dict[str, Any]) -> None:
    stats = metric_stats(alarms["PollerExecutionsFailed"])

    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"ExecutionsFailed", "ExecutionsTimedOut"}


def test_alarm_topic_lets_cloudwatch_publish(synth: Synth) -> None:
    topic_id = synth.logical_id(synth.stack.observability.alarms_topic)
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]

    allow = [s for s in policy if s["Effect"] == "Allow"]
    assert [(s["Principal"], s["Action"]) for s in allow] == [({"Service": "cloudwatch.amazonaws.com"}, "sns:Publish")]
    assert synth.of_type("AWS::SNS::Subscription").keys().isdisjoint({topic_id})  # no e-mail unless configured


def test_outputs(synth: Synth) -> None:
    outputs = synth.json["Outputs"]
    stack = synth.stack

    assert set(outputs) == {
        "ApiUrl",
        "TopicArn",
        "BucketName",
        "TableName",
        "StateMachineArn",
        "ProviderSecretName",
        "SigningSecretName",
        "DefaultTier",
        "ConsoleUrl",
    }
    assert outputs["DefaultTier"]["Value"] == "standard"
    assert outputs["TopicArn"]["Value"] == {"Ref": synth.logical_id(stack.notifications.events_topic)}
    assert outputs["BucketName"]["Value"] == {"Ref": synth.logical_id(stack.storage.bucket)}
    assert outputs["TableName"]["Value"] == {"Ref": synth.logical_id(stack.storage.table)}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": synth.logical_id(stack.workflow.state_machine)}
    assert outputs["ApiUrl"]["Value"]["Fn::Join"][1][-1] == "/"
    assert synth.logical_id(stack.secrets.provider_keys) in str(outputs["ProviderSecretName"]["Value"])
    assert synth.logical_id(stack.secrets.signing_key) in str(outputs["SigningSecretName"]["Value"])
