"""The webhook queue, as the deliver function uses it: to hide a message until its next attempt.

Every `ClientError` is translated here, where the call is made, into a `DeliveryQueueError`; the message is
then reported as failed and comes back when its current visibility timeout ends.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shared.errors import RelayError


class DeliveryQueueError(RelayError):
    """SQS refused or failed a call; `aws_code` is its error code."""

    def __init__(self, operation: str, queue_arn: str, aws_code: str, message: str) -> None:
        super().__init__(f"{operation} on {queue_arn} failed: {aws_code} {message}".strip())
        self.operation = operation
        self.queue_arn = queue_arn
        self.aws_code = aws_code


class DeliveryQueue:
    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._urls: dict[str, str] = {}  # queue ARN -> URL (the event names its queue by ARN)

    def hide(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        """Keep the received message out of sight for `seconds` (0: visible again at once)."""
        self._call(
            "ChangeMessageVisibility",
            queue_arn,
            lambda: self._sqs.change_message_visibility(
                QueueUrl=self._url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            ),
        )

    def _url(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            answer = self._call(
                "GetQueueUrl",
                queue_arn,
                lambda: self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account),
            )
            self._urls[queue_arn] = str(answer["QueueUrl"])
        return self._urls[queue_arn]

    @staticmethod
    def _call(operation: str, queue_arn: str, call: Any) -> Any:
        try:
            return call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DeliveryQueueError(
                operation, queue_arn, str(error.get("Code", "")), str(error.get("Message", ""))
            ) from exc
