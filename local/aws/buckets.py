"""The S3 bucket properties moto's CloudFormation skips, applied through the S3 API as CloudFormation would.

moto creates a template's buckets with their encryption and tags only. Versioning (which the archive's
no-duplicate guarantee is checked against), lifecycle rules, the public access block and access logging
are put here from the same template definitions, so the local bucket behaves as the deployed one.
"""

from __future__ import annotations

from typing import Any


class UnsupportedBucketProperty(ValueError):
    pass


def apply_skipped_properties(s3: Any, bucket: str, properties: dict[str, Any]) -> list[str]:
    """Put each skipped property of a resolved `AWS::S3::Bucket` definition; returns what was applied."""
    applied: list[str] = []
    if "VersioningConfiguration" in properties:
        status = properties["VersioningConfiguration"]["Status"]
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
        applied.append("VersioningConfiguration")
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=dict(properties["PublicAccessBlockConfiguration"])
        )
        applied.append("PublicAccessBlockConfiguration")
    if "LifecycleConfiguration" in properties:
        rules = [lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        applied.append("LifecycleConfiguration")
    if "LoggingConfiguration" in properties:
        logging = properties["LoggingConfiguration"]
        enabled: dict[str, Any] = {"TargetBucket": logging["DestinationBucketName"]}
        enabled["TargetPrefix"] = logging.get("LogFilePrefix", "")
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": enabled})
        applied.append("LoggingConfiguration")
    return applied


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape; a key this does not know is an error, not a skip."""
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    for key, value in rule.items():
        match key:
            case "Status" | "Prefix":
                continue
            case "Id":
                converted["ID"] = value
            case "ExpirationInDays":
                converted["Expiration"] = {"Days": value}
            case "NoncurrentVersionExpiration":
                converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": value["NoncurrentDays"]}
            case "AbortIncompleteMultipartUpload":
                converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": value["DaysAfterInitiation"]}
            case "Transitions":
                converted["Transitions"] = [
                    {"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]} for t in value
                ]
            case _:
                raise UnsupportedBucketProperty(f"lifecycle rule key {key!r} has no local equivalent")
    return converted
