"""The archive bucket: multipart uploads, what is stored under a key and its tags, presigned downloads
(lasting no longer than the credentials that sign them).

A small typed face over the S3 client, so the archive speaks of uploads, parts and stored objects rather than
request dictionaries. Every botocore `ClientError` is translated here, where the call is made: an object that
is not there is `None`, an upload already gone is nothing left to abort, and any other refusal or failure is an
`ArchiveStoreError`, a problem of our storage rather than of the job (the stream retries the record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from shared.errors import RelayError

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
UPLOAD_GONE = frozenset({"NoSuchUpload"})
Result = TypeVar("Result")


class ArchiveStoreError(RelayError):
    """The archive bucket refused or failed a call; `aws_code` is S3's error code."""

    status_code = 503
    code = "archive_store_unavailable"

    def __init__(self, operation: str, key: str, aws_code: str, message: str) -> None:
        super().__init__(f"{operation} of {key} failed: {aws_code} {message}".strip(), details={"code": aws_code})
        self.operation = operation
        self.key = key
        self.aws_code = aws_code


@dataclass(frozen=True)
class StoredObject:
    key: str
    bytes: int
    version_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PresignedDownload:
    url: str
    expires_at: datetime  # never later than the credentials it was signed with allow


@dataclass(frozen=True)
class UploadedPart:
    number: int
    etag: str


def _aws_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _no_expiry() -> datetime | None:
    return None


class ArchiveStore:
    def __init__(self, s3: Any, bucket: str, *, credentials_expiry: Callable[[], datetime | None] = _no_expiry) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._credentials_expiry = credentials_expiry

    def start_upload(self, key: str, *, content_type: str, metadata: Mapping[str, str]) -> str:
        """A new multipart upload of `key`; its upload id."""
        created = self._call(
            "CreateMultipartUpload",
            key,
            lambda: self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=dict(metadata)
            ),
        )
        return str(created["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> UploadedPart:
        answer = self._call(
            "UploadPart",
            key,
            lambda: self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body),
        )
        return UploadedPart(number=number, etag=str(answer["ETag"]))

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        listed = [{"PartNumber": part.number, "ETag": part.etag} for part in parts]
        self._call(
            "CompleteMultipartUpload",
            key,
            lambda: self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            ),
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; one already completed or aborted leaves nothing to do."""
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _aws_code(exc) not in UPLOAD_GONE:
                raise self._translated("AbortMultipartUpload", key, exc) from exc

    def stored(self, key: str) -> StoredObject | None:
        """The object stored under `key` with its tags, or None when there is none."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
            tag_set = self._s3.get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
        except ClientError as exc:
            if _aws_code(exc) in NOT_FOUND:
                return None
            raise self._translated("HeadObject", key, exc) from exc
        return StoredObject(
            key=key,
            bytes=int(head["ContentLength"]),
            version_id=head.get("VersionId"),
            tags={tag["Key"]: tag["Value"] for tag in tag_set},
        )

    def put_tags(self, key: str, tags: Mapping[str, str]) -> None:
        tag_set = [{"Key": name, "Value": value} for name, value in tags.items()]
        self._call(
            "PutObjectTagging",
            key,
            lambda: self._s3.put_object_tagging(Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set}),
        )

    def read(self, key: str, *, version_id: str | None = None, chunk_bytes: int = 1024 * 1024) -> Iterator[bytes]:
        """The stored bytes of `key` (that version, if given), in chunks."""
        extra = {"VersionId": version_id} if version_id else {}
        body = self._call("GetObject", key, lambda: self._s3.get_object(Bucket=self.bucket, Key=key, **extra))["Body"]
        try:
            yield from iter(lambda: body.read(chunk_bytes), b"")
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._call("DeleteObject", key, lambda: self._s3.delete_object(Bucket=self.bucket, Key=key))

    def presigned_download(self, key: str, *, expires_in: int, now: datetime) -> PresignedDownload:
        """A GET link for `key`, signed with this function's credentials (no call to S3 is made).

        A presigned URL dies with the session credentials that signed it, whatever its `X-Amz-Expires`, so a
        link is made to last `expires_in` seconds or until those credentials expire, whichever is sooner.
        """
        expiry = self._credentials_expiry()
        if expiry is not None:
            expires_in = max(1, min(expires_in, int((expiry - now).total_seconds())))
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return PresignedDownload(url=url, expires_at=now + timedelta(seconds=expires_in))

    def _call(self, operation: str, key: str, call: Callable[[], Result]) -> Result:
        try:
            return call()
        except ClientError as exc:
            raise self._translated(operation, key, exc) from exc

    @staticmethod
    def _translated(operation: str, key: str, exc: ClientError) -> ArchiveStoreError:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        return ArchiveStoreError(operation, key, _aws_code(exc), message)
