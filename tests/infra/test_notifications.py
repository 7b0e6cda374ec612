"""Events topic, webhook delivery queue and its subscription, and every dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import MAX_WEBHOOK_DEADLINE_SECONDS, Settings
from shared.webhooks.breaker import PAUSES_SECONDS
from shared.webhooks.retry import ANSWER_SECONDS, BOOKKEEPING_SECONDS, MAX_DELIVERY_ATTEMPTS, RETRY_DELAYS_SECONDS
from tests.infra.synth import Synth, render, synthesize


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def props_of(synth: Synth, construct: Any) -> dict[str, Any]:
    props: dict[str, Any] = synth.resources[synth.logical_id(construct)]["Properties"]
    return props


def test_events_topic_is_encrypted_and_ssl_only(synth: Synth) -> None:
    topic = synth.stack.notifications.events_topic
    topic_id = synth.logical_id(topic)
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]

    # The AWS-managed SNS key, as an alias ARN in this account and region.
    assert render(props_of(synth, topic)["KmsMasterKeyId"]) == (
        "arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:alias/aws/sns"
    )
    assert policy == [
        {
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": {"Ref": topic_id},
            "Sid": "AllowPublishThroughSSLOnly",
        }
    ]


def test_webhook_queue_takes_only_events_of_jobs_with_a_webhook(synth: Synth) -> None:
    n = synth.stack.notifications
    (subscription,) = synth.of_type("AWS::SNS::Subscription").values()
    props = subscription["Properties"]

    assert props["TopicArn"] == {"Ref": synth.logical_id(n.events_topic)}
    assert props["Endpoint"] == {"Fn::GetAtt": [synth.logical_id(n.deliveries), "Arn"]}
    assert props["Protocol"] == "sqs"
    assert props["RawMessageDelivery"] is True
    assert props["FilterPolicy"] == {"has_webhook": ["true"]}
    # What SNS cannot hand to the queue at all lands in its own DLQ.
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synth.logical_id(n.subscription_failures), "Arn"]}
    }


def test_delivery_queue_outlives_the_retry_schedule(synth: Synth) -> None:
    n = synth.stack.notifications
    queue = props_of(synth, n.deliveries)

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synth.logical_id(n.delivery_failures), "Arn"]},
        "maxReceiveCount": MAX_DELIVERY_ATTEMPTS,
    }
    # The whole schedule, and a paused endpoint's longest pause, before SQS would drop the message unseen.
    assert queue["MessageRetentionPeriod"] > sum(RETRY_DELAYS_SECONDS) + max(PAUSES_SECONDS)
    assert queue["VisibilityTimeout"] >= 6 * synth.function("deliver")["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True


def test_deliver_consumes_the_queue_with_partial_batch_failures(synth: Synth) -> None:
    (mapping,) = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synth.function_id("deliver")}
    ]

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.notifications.deliveries), "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumBatchingWindowInSeconds" not in mapping  # a window would delay every webhook by its length
    assert mapping["BatchSize"] == 10
    # Webhook delivery takes at most this much of the account's concurrency, however many events wait.
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_a_batch_always_answers_before_the_function_times_out(synth: Synth) -> None:
    """Deliveries of a batch run at once, each cut off at its deadline: the slowest batch still answers, so a
    batch never times out and comes back whole, redelivering what was delivered and using up its receives."""
    timeout = synth.function("deliver")["Timeout"]
    default_deadline = Settings.model_fields["webhook_deadline_seconds"].default

    assert default_deadline == 10
    assert timeout > MAX_WEBHOOK_DEADLINE_SECONDS + BOOKKEEPING_SECONDS + ANSWER_SECONDS


def test_webhook_concurrency_follows_the_context() -> None:
    synth = synthesize({"relay:webhook_concurrency": "3"})
    (mapping,) = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synth.function_id("deliver")}
    ]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 3}


def test_every_queue_is_encrypted_ssl_only_and_dead_letters_are_kept_14_days(synth: Synth) -> None:
    stack = synth.stack
    dead_letters = {
        synth.logical_id(q)
        for q in (*stack.pipeline.dead_letter_queues.values(), *stack.notifications.dead_letter_queues.values())
    }
    queues = synth.of_type("AWS::SQS::Queue")
    policies = {
        p["Properties"]["Queues"][0]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SQS::QueuePolicy").values()
    }

    assert set(queues) == dead_letters | {synth.logical_id(stack.notifications.deliveries)}
    assert len(dead_letters) == 4
    for logical_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s.get("Condition") for s in policies[logical_id]]
        if logical_id in dead_letters:
            assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
