"""The delivery queue gateway on moto SQS: hiding a received message, its queue's URL looked up once, errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.gateways.delivery_queue import DeliveryQueue, DeliveryQueueError


class Counting:
    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.lookups = 0

    def get_queue_url(self, **kwargs: Any) -> Any:
        self.lookups += 1
        return self.sqs.get_queue_url(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


@pytest.fixture
def queue(aws_mock: None, aws_clients: dict[str, Any]) -> tuple[Any, str, str]:
    sqs = aws_clients["sqs"]
    url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def test_a_hidden_message_stays_out_of_sight_and_shows_again_at_zero(queue: tuple[Any, str, str]) -> None:
    sqs, url, arn = queue
    counting = Counting(sqs)
    gateway = DeliveryQueue(counting)
    sqs.send_message(QueueUrl=url, MessageBody="event")
    [received] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]

    gateway.hide(arn, received["ReceiptHandle"], 3600)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    gateway.hide(arn, received["ReceiptHandle"], 0)

    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["event"]
    assert counting.lookups == 1  # the queue's URL is looked up once


def test_sqs_refusals_are_delivery_queue_errors(queue: tuple[Any, str, str]) -> None:
    sqs, _, arn = queue
    missing = arn.rsplit(":", 1)[0] + ":no-such-queue"

    with pytest.raises(DeliveryQueueError) as raised:
        DeliveryQueue(sqs).hide(missing, "receipt", 5)

    assert (raised.value.operation, raised.value.queue_arn) == ("GetQueueUrl", missing)
    assert isinstance(raised.value.__cause__, ClientError)
