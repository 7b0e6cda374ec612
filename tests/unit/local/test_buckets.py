"""The bucket properties moto's CloudFormation skips are put through the S3 API, or refused when unknown."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from local.aws.buckets import UnsupportedBucketProperty, apply_skipped_properties, lifecycle_rule

PROPERTIES: dict[str, Any] = {
    "VersioningConfiguration": {"Status": "Enabled"},
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "LifecycleConfiguration": {
        "Rules": [
            {
                "Id": "archive-lifecycle",
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
            }
        ]
    },
}


def test_versioning_public_access_block_and_lifecycle_are_applied(aws_mock: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="videos")
    applied = apply_skipped_properties(s3, "videos", PROPERTIES)
    assert applied == ["VersioningConfiguration", "PublicAccessBlockConfiguration", "LifecycleConfiguration"]
    assert s3.get_bucket_versioning(Bucket="videos")["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket="videos")["PublicAccessBlockConfiguration"].values())
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket="videos")["Rules"]
    assert rule["ID"] == "archive-lifecycle"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rule["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]


def test_a_bucket_without_those_properties_is_left_alone(aws_mock: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="plain")
    assert apply_skipped_properties(s3, "plain", {"BucketEncryption": {}}) == []
    assert "Status" not in s3.get_bucket_versioning(Bucket="plain")


def test_expiration_becomes_days() -> None:
    assert lifecycle_rule({"Id": "logs", "Status": "Enabled", "ExpirationInDays": 30}) == {
        "ID": "logs",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": 30},
    }


def test_an_unknown_lifecycle_key_is_refused_rather_than_dropped() -> None:
    with pytest.raises(UnsupportedBucketProperty, match="ExpiredObjectDeleteMarker"):
        lifecycle_rule({"Status": "Enabled", "ExpiredObjectDeleteMarker": True})
