"""The jobs table (its stream is the outbox archive and notify read) and the video bucket with its access logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import INFREQUENT_ACCESS_AFTER_DAYS, RelayConfig
from shared.repository import schema

# Archived outputs are written under this prefix; functions get object access to it only.
ARCHIVE_PREFIX = "jobs/"
# A multipart upload left behind by an archive that died mid-way (15 minutes at most) is garbage after this.
ABORT_INCOMPLETE_UPLOADS_AFTER = cdk.Duration.days(1)
# Overwritten or deleted video versions stay recoverable this long.
NONCURRENT_VERSIONS_KEPT_FOR = cdk.Duration.days(30)


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: RelayConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = self._table()
        self.access_logs = self._access_log_bucket(config)
        self.bucket = self._video_bucket(config)

    def _table(self) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=schema.PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=schema.SK, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=schema.TTL_ATTRIBUTE,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        table.add_global_secondary_index(
            index_name=schema.GSI1,
            partition_key=dynamodb.Attribute(name=schema.GSI1_PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=schema.GSI1_SK, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        table.add_global_secondary_index(
            index_name=schema.GSI2,
            partition_key=dynamodb.Attribute(name=schema.GSI2_PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=schema.GSI2_SK, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _access_log_bucket(self, config: RelayConfig) -> s3.Bucket:
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 server access logging writes to
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(config.log_retention_days))
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _video_bucket(self, config: RelayConfig) -> s3.Bucket:
        expiry = config.video_expiry_days
        transitions = (
            [
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=cdk.Duration.days(INFREQUENT_ACCESS_AFTER_DAYS),
                )
            ]
            # Moving objects that expire within the 30-day Standard-IA minimum would only add charges.
            if expiry == 0 or expiry > INFREQUENT_ACCESS_AFTER_DAYS
            else []
        )
        return s3.Bucket(
            self,
            "Videos",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="videos/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="archive-lifecycle",
                    transitions=transitions,
                    expiration=cdk.Duration.days(expiry) if expiry else None,
                    noncurrent_version_expiration=NONCURRENT_VERSIONS_KEPT_FOR,
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER,
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
