"""The table stream's consumers: archive (a job entered `archiving`) and notify (any job change).

The stream is the outbox: every status change is one conditional write, and these mappings turn it into
an archived video and an event. Records that still fail after bounded retries go to an SQS DLQ (the record's
coordinates, not its data; the stream keeps the data for 24 hours).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import grants
from infra.config import RelayConfig
from infra.lambda_defaults import FunctionSpec, LambdaDefaults, settings_environment
from infra.nag import acknowledge, logical_id
from infra.queues import dead_letter_queue
from infra.storage import ARCHIVE_PREFIX, Storage
from shared.models.common import JobStatus
from shared.repository import schema

JOB_ENTITY = "job"
STREAM_WILDCARD_REASON = (
    "The DynamoDB event source mapping needs dynamodb:ListStreams, which accepts no resource ARN; its other "
    "stream actions are limited to this table's stream."
)


def _string(value: Any) -> dict[str, Any]:
    return {"S": value}


def archive_filter() -> Mapping[str, Any]:
    """A job item that just moved into `archiving` (not any later write while it is archiving)."""
    archiving = JobStatus.ARCHIVING.value
    return lambda_.FilterCriteria.filter(
        {
            "eventName": lambda_.FilterRule.is_equal("MODIFY"),
            "dynamodb": {
                "NewImage": {
                    schema.ENTITY: _string(lambda_.FilterRule.is_equal(JOB_ENTITY)),
                    "status": _string(lambda_.FilterRule.is_equal(archiving)),
                },
                "OldImage": {"status": _string(lambda_.FilterRule.not_equals(archiving))},
            },
        }
    )


def notify_filter() -> Mapping[str, Any]:
    """Any insert or change of a job item (API keys, tenants and idempotency records are not events)."""
    return lambda_.FilterCriteria.filter(
        {
            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
            "dynamodb": {"NewImage": {schema.ENTITY: _string(lambda_.FilterRule.is_equal(JOB_ENTITY))}},
        }
    )


class Pipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        lambdas: LambdaDefaults,
        storage: Storage,
        events_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        table, bucket = storage.table, storage.bucket

        self.archive_failures = dead_letter_queue(self, "ArchiveFailures", fed_by="the archive stream mapping")
        self.archive_function = lambdas.create(
            self,
            "ArchiveFunction",
            FunctionSpec(
                name="archive",
                description="Copies a finished job's videos into the bucket, then marks it succeeded or failed",
                memory_mb=512,
                timeout=cdk.Duration.seconds(900),
                environment=settings_environment(
                    table_name=table.table_name,
                    bucket_name=bucket.bucket_name,
                    max_video_bytes=config.max_video_bytes,
                    job_retention_days=config.job_retention_days,
                ),
                wildcard_reason=STREAM_WILDCARD_REASON,
            ),
        )
        grants.table_items(self.archive_function, table, "archive")
        # PutObject covers the multipart calls and GetObject covers HeadObject; the checksum is an object tag
        # (written after upload, read to resume), and outputs of a job canceled meanwhile are deleted.
        grants.objects(
            self.archive_function,
            bucket,
            ARCHIVE_PREFIX,
            "PutObject",
            "AbortMultipartUpload",
            "PutObjectTagging",
            "GetObject",
            "GetObjectTagging",
            "DeleteObject",
        )
        # Without ListBucket, HeadObject on a key not yet written answers 403 instead of the 404 the archive
        # reads as "not archived yet".
        grants.allow(self.archive_function, ["s3:ListBucket"], [bucket.bucket_arn])
        self.archive_function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                filters=[archive_filter()],
                batch_size=1,  # one job's videos per invocation: up to 15 minutes of streaming
                # Jobs are independent; up to 10 archives run at once per shard instead of queueing.
                parallelization_factor=10,
                bisect_batch_on_error=True,
                retry_attempts=3,
                max_record_age=cdk.Duration.hours(6),
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.archive_failures),
            )
        )

        self.notify_failures = dead_letter_queue(self, "NotifyFailures", fed_by="the notify stream mapping")
        self.notify_function = lambdas.create(
            self,
            "NotifyFunction",
            FunctionSpec(
                name="notify",
                description="Publishes one event per job change to the events topic",
                memory_mb=256,
                timeout=cdk.Duration.seconds(30),
                environment=settings_environment(topic_arn=events_topic.topic_arn, table_name=table.table_name),
                wildcard_reason=STREAM_WILDCARD_REASON,
            ),
        )
        # The topic uses the AWS-managed SNS key, whose key policy already lets SNS use it for this account.
        grants.allow(self.notify_function, ["sns:Publish"], [events_topic.topic_arn])
        # Gives back a finished job's place in flight (shared/pacing) and settles its tenant's admission.
        grants.table_items(self.notify_function, table, "notify")
        self.notify_function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                filters=[notify_filter()],
                # No batching window: each change is published as soon as the stream has it (a window
                # would add its length to every event's latency to save invocations).
                batch_size=100,
                bisect_batch_on_error=True,
                retry_attempts=5,
                max_record_age=cdk.Duration.hours(1),
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.notify_failures),
            )
        )

        acknowledge(
            grants.role_of(self.archive_function),
            f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{ARCHIVE_PREFIX}*]",
            "Archived videos are written under one key per job and output, unknown at deploy time; the grant "
            "covers writing, tagging, reading back and deleting objects, under the archive prefix only.",
        )

    @property
    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        return {"ArchiveFailures": self.archive_failures, "NotifyFailures": self.notify_failures}
