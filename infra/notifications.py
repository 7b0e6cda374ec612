"""Job events: the SNS topic notify publishes to, and webhook delivery (SQS subscription + deliver function)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import grants
from infra.config import RelayConfig
from infra.lambda_defaults import FunctionSpec, LambdaDefaults, settings_environment
from infra.queues import dead_letter_queue
from infra.secrets import Secrets
from infra.storage import Storage
from shared.settings import MAX_WEBHOOK_DEADLINE_SECONDS
from shared.webhooks.retry import (
    ANSWER_SECONDS,
    BOOKKEEPING_SECONDS,
    DELIVERY_RETENTION_SECONDS,
    MAX_DELIVERY_ATTEMPTS,
)

# Message attribute the notify function sets to "true" when the job has a webhook_url.
HAS_WEBHOOK_ATTRIBUTE = "has_webhook"
# A batch's deliveries run at the same time, each ending by its deadline (at most the settings' bound), then
# the breaker and queue bookkeeping: the function always answers well within its timeout, so a batch never times
# out and comes back whole (with what it had delivered) after the visibility timeout.
DELIVER_BATCH_SIZE = 10
DELIVER_TIMEOUT_SECONDS = 30
assert MAX_WEBHOOK_DEADLINE_SECONDS + BOOKKEEPING_SECONDS + ANSWER_SECONDS < DELIVER_TIMEOUT_SECONDS
# A message is retried on the schedule in shared.webhooks.retry; it must outlive all of it (~27.6 hours), a
# paused endpoint's longest pause, and the attempts themselves.
DELIVERY_RETENTION = cdk.Duration.seconds(DELIVERY_RETENTION_SECONDS)


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        lambdas: LambdaDefaults,
        storage: Storage,
        secrets: Secrets,
    ) -> None:
        super().__init__(scope, construct_id)
        self.events_topic = sns.Topic(
            self,
            "Events",
            display_name="Kling Relay job events",
            enforce_ssl=True,
            # The AWS-managed key: encrypted at rest at no key cost, and SNS can still deliver to the
            # SSE-SQS queue below. (CloudWatch alarms cannot publish to it, so the alarm topic is separate.)
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
        )

        self.subscription_failures = dead_letter_queue(
            self, "SubscriptionFailures", fed_by="the events topic's subscription (messages SNS could not deliver)"
        )
        self.delivery_failures = dead_letter_queue(self, "DeliveryFailures")
        self.deliveries = sqs.Queue(
            self,
            "Deliveries",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # At least six times the function timeout, as Lambda advises for SQS event sources (a throttled batch
            # is retried within it); the deliver function sets each retry's own delay with ChangeMessageVisibility.
            visibility_timeout=cdk.Duration.seconds(DELIVER_TIMEOUT_SECONDS * 6),
            retention_period=DELIVERY_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.delivery_failures, max_receive_count=MAX_DELIVERY_ATTEMPTS
            ),
        )
        self.events_topic.add_subscription(
            subscriptions.SqsSubscription(
                self.deliveries,
                raw_message_delivery=True,
                filter_policy={HAS_WEBHOOK_ATTRIBUTE: sns.SubscriptionFilter.string_filter(allowlist=["true"])},
                dead_letter_queue=self.subscription_failures,
            )
        )

        table = storage.table
        self.deliver_function = lambdas.create(
            self,
            "DeliverFunction",
            FunctionSpec(
                name="deliver",
                description="POSTs job events to apps' webhooks, signed, within a deadline; retries; endpoint breakers",
                memory_mb=256,
                timeout=cdk.Duration.seconds(DELIVER_TIMEOUT_SECONDS),
                environment=settings_environment(
                    table_name=table.table_name, signing_secret_name=secrets.signing_key.secret_name
                ),
            ),
        )
        grants.table_items(self.deliver_function, table, "deliver")
        grants.read_secrets(self.deliver_function, secrets.signing_key)
        # The event source mapping adds the receive/delete/attributes permissions it polls with; the function
        # itself only changes a failed message's visibility to schedule its retry.
        grants.allow(self.deliver_function, ["sqs:ChangeMessageVisibility"], [self.deliveries.queue_arn])
        self.deliver_function.add_event_source(
            sources.SqsEventSource(
                self.deliveries,
                batch_size=DELIVER_BATCH_SIZE,  # no batching window: a webhook goes out as soon as it is queued
                report_batch_item_failures=True,
                max_concurrency=config.webhook_concurrency,
            )
        )

    @property
    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        return {"SubscriptionFailures": self.subscription_failures, "DeliveryFailures": self.delivery_failures}
