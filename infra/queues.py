"""Dead-letter queues: every asynchronous path ends in one, and an alarm watches each."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge

# The SQS maximum. A message keeps its original enqueue time when it moves to a DLQ, so the DLQ must keep
# messages longer than any source queue does, and an operator needs time to look and redrive.
DEAD_LETTER_RETENTION = cdk.Duration.days(14)


def dead_letter_queue(scope: Construct, construct_id: str, *, fed_by: str | None = None) -> sqs.Queue:
    """A DLQ. `fed_by` names a non-SQS source (a stream mapping, an SNS subscription): cdk-nag only recognises
    queues named in another queue's redrive policy as dead-letter queues, so those need saying."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    if fed_by:
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            f"This queue is itself the dead-letter queue of {fed_by}; a DLQ of a DLQ would only move the same "
            "messages again. An alarm fires as soon as it holds any message.",
        )
    return queue
