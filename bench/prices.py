"""Public on-demand prices, us-east-1, without free tiers: the same table as the README's cost section."""

from __future__ import annotations

from typing import Final

LAMBDA_REQUEST: Final = 0.20 / 1_000_000
LAMBDA_GB_SECOND_ARM: Final = 0.0000133334
SFN_TRANSITION: Final = 0.025 / 1_000
DYNAMODB_WRU: Final = 0.625 / 1_000_000
DYNAMODB_RRU: Final = 0.125 / 1_000_000
S3_TIER1_REQUEST: Final = 0.005 / 1_000  # PUT, COPY, POST, LIST (each multipart call is one)
S3_TIER2_REQUEST: Final = 0.0004 / 1_000  # GET, HEAD and the rest but DELETE (free)
SNS_PUBLISH: Final = 0.50 / 1_000_000  # per 64 KB chunk of a publish
SQS_REQUEST: Final = 0.40 / 1_000_000
API_GATEWAY_REST_REQUEST: Final = 3.50 / 1_000_000
SECRETS_MANAGER_CALL: Final = 0.05 / 10_000

# S3 operations by price class; DELETE and AbortMultipartUpload are free.
S3_TIER1: Final = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "PutObjectTagging",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "ListMultipartUploads",
        "ListParts",
    }
)
S3_FREE: Final = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})
