"""The archive store gateway on moto S3: uploads, stored objects and tags, and S3's errors in our terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from shared.gateways.archive_store import ArchiveStore, ArchiveStoreError, StoredObject

BUCKET = "archive-store-test"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MiB = 1024 * 1024


@pytest.fixture
def s3(aws_mock: None, aws_clients: dict[str, Any]) -> Any:
    client = aws_clients["s3"]
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def store(s3: Any) -> ArchiveStore:
    return ArchiveStore(s3, BUCKET)


def test_a_multipart_upload_stores_its_parts_in_order_with_its_metadata(store: ArchiveStore, s3: Any) -> None:
    upload_id = store.start_upload("jobs/a/out.mp4", content_type="video/mp4", metadata={"job-id": "job_1"})
    parts = [
        store.upload_part("jobs/a/out.mp4", upload_id, 1, bytearray(b"a" * 5 * MiB)),
        store.upload_part("jobs/a/out.mp4", upload_id, 2, b"tail"),
    ]
    store.complete_upload("jobs/a/out.mp4", upload_id, parts)

    stored = s3.get_object(Bucket=BUCKET, Key="jobs/a/out.mp4")
    assert stored["Body"].read() == b"a" * 5 * MiB + b"tail"
    assert stored["ContentType"] == "video/mp4"
    assert stored["Metadata"] == {"job-id": "job_1"}
    assert [part.number for part in parts] == [1, 2]
    assert all(part.etag.startswith('"') for part in parts)


def test_what_is_stored_under_a_key_with_its_tags(store: ArchiveStore, s3: Any) -> None:
    assert store.stored("jobs/a/out.mp4") is None

    s3.put_object(Bucket=BUCKET, Key="jobs/a/out.mp4", Body=b"video")
    untagged = store.stored("jobs/a/out.mp4")
    store.put_tags("jobs/a/out.mp4", {"sha256": "abc"})

    assert untagged is not None
    assert untagged == StoredObject(key="jobs/a/out.mp4", bytes=5, version_id=untagged.version_id, tags={})
    assert untagged.version_id
    assert store.stored("jobs/a/out.mp4") == StoredObject(
        key="jobs/a/out.mp4", bytes=5, version_id=untagged.version_id, tags={"sha256": "abc"}
    )


def test_read_returns_the_version_asked_for(store: ArchiveStore, s3: Any) -> None:
    first = s3.put_object(Bucket=BUCKET, Key="k", Body=b"first" * 1000)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"second")

    chunks = list(store.read("k", version_id=first, chunk_bytes=1000))

    assert b"".join(chunks) == b"first" * 1000
    assert len(chunks) == 5
    assert b"".join(store.read("k")) == b"second"


def test_an_aborted_upload_leaves_nothing_and_aborting_again_is_not_an_error(store: ArchiveStore, s3: Any) -> None:
    upload_id = store.start_upload("k", content_type="video/mp4", metadata={})
    store.upload_part("k", upload_id, 1, b"part")

    store.abort_upload("k", upload_id)
    store.abort_upload("k", upload_id)

    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert store.stored("k") is None


def test_s3_refusals_are_archive_store_errors_naming_the_call_and_code(store: ArchiveStore, s3: Any) -> None:
    elsewhere = ArchiveStore(s3, "no-such-bucket")
    with pytest.raises(ArchiveStoreError) as raised:
        elsewhere.start_upload("k", content_type="video/mp4", metadata={})

    error = raised.value
    assert (error.operation, error.key, error.aws_code) == ("CreateMultipartUpload", "k", "NoSuchBucket")
    assert isinstance(error.__cause__, ClientError)
    with pytest.raises(ArchiveStoreError, match="GetObject of missing failed: NoSuchKey"):
        list(store.read("missing"))


def test_a_missing_bucket_is_an_error_not_a_missing_object(aws_mock: None, aws_clients: dict[str, Any]) -> None:
    store = ArchiveStore(aws_clients["s3"], "no-such-bucket")

    with pytest.raises(ArchiveStoreError) as raised:
        store.stored("k")

    assert raised.value.operation == "HeadObject"


def test_failures_other_than_a_gone_upload_are_raised_from_abort() -> None:
    class Failing:
        def abort_multipart_upload(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your rate"}}, "AbortMultipartUpload")

    with pytest.raises(ArchiveStoreError, match="AbortMultipartUpload of k failed: SlowDown reduce your rate"):
        ArchiveStore(Failing(), BUCKET).abort_upload("k", "u-1")


def test_a_presigned_download_is_a_signed_get_of_the_key(store: ArchiveStore, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="jobs/a/out.mp4", Body=b"video")

    link = store.presigned_download("jobs/a/out.mp4", expires_in=600, now=NOW)

    parsed = httpx.URL(link.url)
    assert parsed.path.endswith(f"{BUCKET}/jobs/a/out.mp4") or parsed.host.startswith(BUCKET)
    assert parsed.params["X-Amz-Expires"] == "600"
    assert parsed.params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert link.expires_at == NOW + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("credentials_left", "asked", "lasts"),
    [
        (timedelta(minutes=10), 3600, 600),  # the credentials die first: so does the link, and we say so
        (timedelta(hours=6), 3600, 3600),  # the credentials outlive the link: it lasts what was asked
        (timedelta(seconds=0.5), 3600, 1),  # about to be refreshed: the shortest link S3 signs
    ],
)
def test_a_presigned_download_never_outlives_the_credentials_that_signed_it(
    s3: Any, credentials_left: timedelta, asked: int, lasts: int
) -> None:
    store = ArchiveStore(s3, BUCKET, credentials_expiry=lambda: NOW + credentials_left)

    link = store.presigned_download("jobs/a/out.mp4", expires_in=asked, now=NOW)

    assert httpx.URL(link.url).params["X-Amz-Expires"] == str(lasts)
    assert link.expires_at == NOW + timedelta(seconds=lasts)
    assert link.expires_at <= NOW + max(credentials_left, timedelta(seconds=1))
