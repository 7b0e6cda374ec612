"""The job events topic: one SNS message per event, with the attributes subscriptions filter on.

Every `ClientError` is translated here, where the call is made, into an `EventPublishError` (the stream
record is retried, so nothing is lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from shared.errors import RelayError


class EventPublishError(RelayError):
    """SNS refused or failed a publish; `aws_code` is its error code."""

    def __init__(self, topic_arn: str, aws_code: str, message: str) -> None:
        super().__init__(f"Publish to {topic_arn} failed: {aws_code} {message}".strip())
        self.topic_arn = topic_arn
        self.aws_code = aws_code


class EventPublisher:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, message: str, attributes: Mapping[str, str]) -> str:
        """Publish `message` with string `attributes`; SNS's message id."""
        try:
            answer = self._sns.publish(
                TopicArn=self.topic_arn,
                Message=message,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
                },
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EventPublishError(self.topic_arn, str(error.get("Code", "")), str(error.get("Message", ""))) from exc
        return str(answer["MessageId"])
