"""Writing a job's output to disk: streamed into a temporary file, checked, then moved into place."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import IO

from kling_relay.errors import ChecksumMismatchError, DownloadError, JobNotSucceededError
from kling_relay.models import Job, Output

CHUNK_BYTES = 1024 * 1024
_EXTENSIONS = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"}


def pick_output(job: Job, index: int) -> Output:
    if job.status != "succeeded":
        raise JobNotSucceededError(f"job {job.id} is {job.status}: only a succeeded job has outputs", job=job)
    if not 0 <= index < len(job.outputs):
        raise JobNotSucceededError(
            f"job {job.id} has {len(job.outputs)} output(s); there is no output {index}", job=job
        )
    return job.outputs[index]


def target_path(path: str | os.PathLike[str], job: Job, index: int, output: Output) -> Path:
    """`path` itself, or a file named after the job inside it when `path` is a directory."""
    target = Path(path)
    if target.is_dir():
        suffix = "" if index == 0 else f"-{index}"
        target = target / f"{job.id}{suffix}{_EXTENSIONS.get(output.content_type, '')}"
    return target


class Sink:
    """Bytes of one output on their way to `target`: hashed and counted as they are written."""

    def __init__(self, target: Path, output: Output) -> None:
        self.target = target
        self.output = output
        self.partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
        self._digest = hashlib.sha256()
        self._size = 0
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Sink:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.partial.open("xb")
        return self

    def check_status(self, status_code: int) -> None:
        if status_code != 200:
            raise DownloadError(
                f"the output's storage answered {status_code} (a link expires at {self.output.expires_at.isoformat()})",
                status_code=status_code,
            )

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._size += len(chunk)
        if self._size > self.output.bytes:
            raise self._mismatch()  # no need to fill a disk to know
        self._digest.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Path:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self._size != self.output.bytes or self._digest.hexdigest() != self.output.sha256.lower():
            raise self._mismatch()
        os.replace(self.partial, self.target)
        return self.target

    def _mismatch(self) -> ChecksumMismatchError:
        actual = self._digest.hexdigest() if self._size <= self.output.bytes else "(more bytes than recorded)"
        return ChecksumMismatchError(
            f"the downloaded output does not match the job's record: {self._size} bytes with SHA-256 {actual}, "
            f"expected {self.output.bytes} bytes with SHA-256 {self.output.sha256}; nothing was kept",
            expected_sha256=self.output.sha256,
            actual_sha256=actual,
            expected_bytes=self.output.bytes,
            actual_bytes=self._size,
        )

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self.partial.unlink(missing_ok=True)
