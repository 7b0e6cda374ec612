"""The event publisher gateway on moto SNS: a message with string attributes, and SNS's errors in our terms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.gateways.event_publisher import EventPublisher, EventPublishError


@pytest.fixture
def topic(aws_mock: None, aws_clients: dict[str, Any]) -> tuple[Any, str, str]:
    """(sns client, topic ARN, URL of a queue subscribed to the topic with raw delivery off)."""
    sns, sqs = aws_clients["sns"], aws_clients["sqs"]
    arn = sns.create_topic(Name="events")["TopicArn"]
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return sns, arn, queue


def test_a_message_is_published_with_its_attributes_as_strings(
    topic: tuple[Any, str, str], aws_clients: dict[str, Any]
) -> None:
    sns, arn, queue = topic

    attributes = {"type": "job.queued", "has_webhook": "true"}
    message_id = EventPublisher(sns, arn).publish('{"type":"job.queued"}', attributes)

    [received] = aws_clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(received["Body"])
    assert (envelope["MessageId"], envelope["Message"]) == (message_id, '{"type":"job.queued"}')
    assert envelope["MessageAttributes"] == {
        "type": {"Type": "String", "Value": "job.queued"},
        "has_webhook": {"Type": "String", "Value": "true"},
    }


def test_a_refused_publish_is_an_event_publish_error(aws_mock: None, aws_clients: dict[str, Any]) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"

    with pytest.raises(EventPublishError) as raised:
        EventPublisher(aws_clients["sns"], missing).publish("{}", {})

    assert raised.value.aws_code == "NotFound"
    assert raised.value.topic_arn == missing
    assert isinstance(raised.value.__cause__, ClientError)
