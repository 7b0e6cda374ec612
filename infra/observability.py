"""Alarms on what needs a person: dead letters, job failure rate, rejected callbacks, paused webhook endpoints,
throttling, a dead poller.

Custom metrics come from the functions (Powertools EMF, namespace `KlingRelay`, dimension service=kling-relay).
Every alarm notifies the alarms topic, which can mail an operator (context `relay:alarm_email`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import RelayConfig
from infra.lambda_defaults import POWERTOOLS_ENVIRONMENT
from shared.repository import schema

NAMESPACE = POWERTOOLS_ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
SERVICE_DIMENSION = {"service": POWERTOOLS_ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]}
FAILURE_RATE_PERIOD = cdk.Duration.minutes(15)
# Below this many finished jobs in a period, one failure would read as a high rate; stay quiet instead.
FAILURE_RATE_MIN_JOBS = 5
SHORT_PERIOD = cdk.Duration.minutes(5)


def relay_metric(name: str, period: cdk.Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map=SERVICE_DIMENSION, statistic="Sum", period=period
    )


def _fill_sum(metrics: Mapping[str, cloudwatch.IMetric]) -> str:
    return " + ".join(f"FILL({name}, 0)" for name in metrics)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Sequence[lambda_.IFunction],
        table: dynamodb.ITable,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms_topic = self._alarms_topic(config)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}NotEmpty",
                f"{name} holds messages: work was given up on after its retries. Inspect, fix, then redrive.",
                queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=cdk.Duration.minutes(1)
                ),
                threshold=0,
            )

        finished = {
            "succeeded": relay_metric("JobsSucceeded", FAILURE_RATE_PERIOD),
            "failed": relay_metric("JobsFailed", FAILURE_RATE_PERIOD),
            "timedOut": relay_metric("JobsTimedOut", FAILURE_RATE_PERIOD),
        }
        total = _fill_sum(finished)
        bad = "FILL(failed, 0) + FILL(timedOut, 0)"
        self._alarm(
            "JobFailureRate",
            f"More than {config.failure_rate_alarm_percent}% of finished jobs failed or timed out "
            f"(over 15 minutes, at least {FAILURE_RATE_MIN_JOBS} jobs).",
            cloudwatch.MathExpression(
                expression=f"IF(({total}) >= {FAILURE_RATE_MIN_JOBS}, 100 * ({bad}) / ({total}), 0)",
                using_metrics=finished,
                label="Failed or timed-out jobs, % of finished",
                period=FAILURE_RATE_PERIOD,
            ),
            threshold=config.failure_rate_alarm_percent,
        )
        self._alarm(
            "CallbacksRejected",
            "Many provider callbacks failed verification: a misconfigured key, or someone probing the callback URL.",
            relay_metric("CallbacksRejected", SHORT_PERIOD),
            threshold=config.callbacks_rejected_alarm_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )

        self._alarm(
            "WebhookEndpointsPaused",
            "A tenant's webhook endpoint failed many deliveries in a row and its circuit breaker paused it: its "
            "events wait on the queue (other tenants' are not affected). The deliver function's log names the "
            "tenant and the reason; tell the tenant if it persists.",
            relay_metric("WebhookEndpointsPaused", SHORT_PERIOD),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )

        lambda_throttles = {
            f"fn{i}": function.metric_throttles(statistic="Sum", period=SHORT_PERIOD)
            for i, function in enumerate(functions)
        }
        self._alarm(
            "LambdaThrottles",
            "A function was throttled (account or reserved concurrency exhausted).",
            cloudwatch.MathExpression(
                expression=_fill_sum(lambda_throttles),
                using_metrics=lambda_throttles,
                label="Throttled invocations",
                period=SHORT_PERIOD,
            ),
            threshold=0,
        )

        table_throttles: dict[str, cloudwatch.IMetric] = {}
        for prefix, index in (("table", None), ("index", schema.GSI1), ("statusIndex", schema.GSI2)):
            for kind in ("Read", "Write"):
                dimensions = {"TableName": table.table_name}
                if index:
                    dimensions["GlobalSecondaryIndexName"] = index
                table_throttles[f"{prefix}{kind}"] = cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=f"{kind}ThrottleEvents",
                    dimensions_map=dimensions,
                    statistic="Sum",
                    period=SHORT_PERIOD,
                )
        self._alarm(
            "TableThrottles",
            "DynamoDB throttled reads or writes on the jobs table or one of its indexes.",
            cloudwatch.MathExpression(
                expression=_fill_sum(table_throttles),
                using_metrics=table_throttles,
                label="Throttle events",
                period=SHORT_PERIOD,
            ),
            threshold=0,
        )

        poller_failures = {
            "failed": state_machine.metric_failed(statistic="Sum", period=SHORT_PERIOD),
            "timedOut": state_machine.metric_timed_out(statistic="Sum", period=SHORT_PERIOD),
        }
        self._alarm(
            "PollerExecutionsFailed",
            "A poller execution failed or hit its timeout: its job is no longer being watched.",
            cloudwatch.MathExpression(
                expression=_fill_sum(poller_failures),
                using_metrics=poller_failures,
                label="Failed or timed-out executions",
                period=SHORT_PERIOD,
            ),
            threshold=0,
        )

    def _alarms_topic(self, config: RelayConfig) -> sns.Topic:
        # Not encrypted: CloudWatch cannot publish to a topic under the AWS-managed SNS key, and alarm messages
        # (alarm names and metric values) are not worth a customer-managed key.
        topic = sns.Topic(self, "Alarms", display_name="Kling Relay alarms", enforce_ssl=True)
        # The topic has a resource policy (for SSL), so CloudWatch's right to publish must be stated in it.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            )
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _alarm(
        self,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.alarms_topic))
        alarm.add_ok_action(actions.SnsAction(self.alarms_topic))
        self.alarms[name] = alarm
