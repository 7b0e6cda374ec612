"""One measured transfer in a fresh process: `archive` runs the real `archive_job`, `upload` boto3's `upload_file`.

`python -m bench.archive_worker archive <job id>` or `... upload <file> <key>`; the bucket, table and endpoint
come from the environment (KR_BUCKET_NAME, KR_TABLE_NAME, AWS_ENDPOINT_URL). Both load the same libraries and
build their clients before measuring; it prints one JSON line: wall seconds, bytes, RSS before, peak RSS after.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import boto3.s3.transfer

from shared import aws
from shared.runtime import Runtime
from shared.services.archive import archive_job
from shared.settings import Settings


def s3_client() -> Any:
    """The functions' own S3 client settings, for both workers."""
    return aws.new_client("s3")


def current_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def run_archive(job_id: str) -> dict[str, Any]:
    runtime = Runtime(Settings(local_mode=True), clients={"s3": s3_client()})
    runtime.client("dynamodb")
    before = current_rss_kib()
    started = time.perf_counter()
    job = archive_job(runtime, job_id)
    seconds = time.perf_counter() - started
    if job is None or job.status.value != "succeeded":
        raise SystemExit(f"archive did not succeed: {None if job is None else (job.status, job.error)}")
    return {
        "seconds": seconds,
        "bytes": sum(output.bytes for output in job.outputs),
        "sha256": job.outputs[0].sha256,
        "key": job.outputs[0].key,
        "rss_before_kib": before,
        "peak_rss_kib": peak_rss_kib(),
    }


def run_upload(path: str, key: str) -> dict[str, Any]:
    s3 = s3_client()
    bucket = os.environ["KR_BUCKET_NAME"]
    boto3.s3.transfer.TransferConfig()  # the defaults upload_file uses, loaded before measuring
    before = current_rss_kib()
    started = time.perf_counter()
    s3.upload_file(path, bucket, key)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes": Path(path).stat().st_size,
        "key": key,
        "rss_before_kib": before,
        "peak_rss_kib": peak_rss_kib(),
    }


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "archive":
        result = run_archive(argv[1])
    elif len(argv) == 3 and argv[0] == "upload":
        result = run_upload(argv[1], argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
