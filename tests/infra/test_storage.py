"""The table, the video bucket and its access-log bucket, and the secrets."""

from __future__ import annotations

from typing import Any

import pytest

from shared.repository import schema
from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def bucket(synth: Synth, which: str) -> dict[str, Any]:
    construct = getattr(synth.stack.storage, which)
    props: dict[str, Any] = synth.resources[synth.logical_id(construct)]["Properties"]
    return props


def bucket_policy(synth: Synth, which: str) -> list[dict[str, Any]]:
    logical_id = synth.logical_id(getattr(synth.stack.storage, which))
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    return list(policy)


def test_table_matches_the_repository_schema(synth: Synth) -> None:
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    definition = schema.table_definition()

    assert props["KeySchema"] == definition["KeySchema"]
    assert props["GlobalSecondaryIndexes"] == definition["GlobalSecondaryIndexes"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)  # type: ignore[call-overload]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_video_bucket_is_private_encrypted_versioned_and_logged(synth: Synth) -> None:
    props = bucket(synth, "bucket")

    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": synth.logical_id(synth.stack.storage.access_logs)},
        "LogFilePrefix": "videos/",
    }


def test_video_lifecycle_defaults(synth: Synth) -> None:
    (rule,) = bucket(synth, "bucket")["LifecycleConfiguration"]["Rules"]

    assert rule["Status"] == "Enabled"
    assert rule["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert "ExpirationInDays" not in rule  # relay:video_expiry_days defaults to 0: keep videos
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


@pytest.mark.parametrize("which", ["bucket", "access_logs"])
def test_buckets_refuse_plain_http_and_old_tls(synth: Synth, which: str) -> None:
    denials = [s for s in bucket_policy(synth, which) if s["Effect"] == "Deny"]

    conditions = [s["Condition"] for s in denials]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
    for statement in denials:
        assert statement["Principal"] == {"AWS": "*"}
        assert statement["Action"] == "s3:*"


def test_access_log_bucket_accepts_only_s3_logging_from_this_account(synth: Synth) -> None:
    props = bucket(synth, "access_logs")
    allows = [s for s in bucket_policy(synth, "access_logs") if s["Effect"] == "Allow"]

    assert props["LifecycleConfiguration"]["Rules"] == [
        {"ExpirationInDays": 30, "Id": "expire-logs", "Status": "Enabled"}
    ]
    # One grant per bucket that logs here (the videos and, with the console, its two buckets), each to its prefix.
    sources = {allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::GetAtt"][0] for allow in allows}
    assert synth.logical_id(synth.stack.storage.bucket) in sources
    assert len(sources) == len(allows)
    for allow in allows:
        assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert allow["Action"] == "s3:PutObject"
        assert "aws:SourceAccount" in allow["Condition"]["StringEquals"]


def test_secrets(synth: Synth) -> None:
    provider = synth.resources[synth.logical_id(synth.stack.secrets.provider_keys)]
    signing = synth.resources[synth.logical_id(synth.stack.secrets.signing_key)]

    assert provider["Properties"]["SecretString"] == "{}"  # the operator fills it in
    assert signing["Properties"]["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 64,
    }
    for secret in (provider, signing):
        assert "Name" not in secret["Properties"]
        assert secret["DeletionPolicy"] == "Retain"
