"""One measured transfer in a fresh process; it prints one JSON line (wall and CPU seconds, bytes, RSS).

    python -m bench.archive_worker archive <job id>            the real `archive_job`
    python -m bench.archive_worker download <url>              the archive's download alone: read and discard
    python -m bench.archive_worker upload-memory <file> <key>  the upload alone: the bytes from memory, boto3's
                                                               upload_fileobj (its default transfer settings)
    python -m bench.archive_worker upload <file> <key>         boto3's upload_file from the local file
    python -m bench.archive_worker profile <job id>            `archive_job` under the profiler (not timed)

The bucket, table and endpoint come from the environment (KR_BUCKET_NAME, KR_TABLE_NAME, AWS_ENDPOINT_URL).
Every mode loads the same libraries and builds its clients before the clock starts.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3.s3.transfer

from shared import aws
from shared.runtime import Runtime
from shared.services.archive import archive_job
from shared.settings import Settings

CHUNK = 1024 * 1024  # what the archive asks httpx for


def s3_client() -> Any:
    """The functions' own S3 client settings, for every mode."""
    return aws.new_client("s3")


def current_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(transfer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before, cpu = current_rss_kib(), cpu_seconds()
    started = time.perf_counter()
    result = transfer()
    seconds = time.perf_counter() - started
    return {
        **result,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "rss_before_kib": before,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # KiB on Linux
    }


def archive_runtime() -> Runtime:
    runtime = Runtime(Settings(local_mode=True), clients={"s3": s3_client()})
    runtime.client("dynamodb")
    return runtime


def run_archive(job_id: str) -> dict[str, Any]:
    runtime = archive_runtime()

    def transfer() -> dict[str, Any]:
        job = archive_job(runtime, job_id)
        if job is None or job.status.value != "succeeded":
            raise SystemExit(f"archive did not succeed: {None if job is None else (job.status, job.error)}")
        return {
            "bytes": sum(output.bytes for output in job.outputs),
            "sha256": job.outputs[0].sha256,
            "key": job.outputs[0].key,
        }

    return measured(transfer)


def run_download(url: str) -> dict[str, Any]:
    runtime = archive_runtime()
    http = runtime.outbound_http(timeout=runtime.settings.download_timeout_seconds, follow_redirects=True)

    def transfer() -> dict[str, Any]:
        total = 0
        with http.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(chunk_size=CHUNK):
                total += len(chunk)
        return {"bytes": total}

    return measured(transfer)


def run_upload_from_memory(path: str, key: str) -> dict[str, Any]:
    s3 = s3_client()
    bucket = os.environ["KR_BUCKET_NAME"]
    data = Path(path).read_bytes()
    boto3.s3.transfer.TransferConfig()

    def transfer() -> dict[str, Any]:
        s3.upload_fileobj(io.BytesIO(data), bucket, key)
        return {"bytes": len(data), "key": key}

    return measured(transfer)


def run_upload_file(path: str, key: str) -> dict[str, Any]:
    s3 = s3_client()
    bucket = os.environ["KR_BUCKET_NAME"]
    boto3.s3.transfer.TransferConfig()  # the defaults upload_file uses, loaded before measuring

    def transfer() -> dict[str, Any]:
        s3.upload_file(path, bucket, key)
        return {"bytes": Path(path).stat().st_size, "key": key}

    return measured(transfer)


def run_profile(job_id: str) -> dict[str, Any]:
    from bench.archive_profile import profiled_archive

    return profiled_archive(archive_runtime(), job_id)


MODES: dict[str, tuple[int, Callable[..., dict[str, Any]]]] = {
    "archive": (1, run_archive),
    "download": (1, run_download),
    "upload-memory": (2, run_upload_from_memory),
    "upload": (2, run_upload_file),
    "profile": (1, run_profile),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in MODES or len(argv) - 1 != MODES[argv[0]][0]:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(MODES[argv[0]][1](*argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
