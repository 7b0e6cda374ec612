"""Where the archive's time goes, in one profiled run (its times are the profiler's, not the benchmark's).

One cProfile profiler sees every thread (Python 3.12+ profiles through sys.monitoring, process-wide): the
reading thread (download, hashing, copying into parts, waiting for a free sender) and the part senders. Each
function's own time is put in a bucket (SHA-256 split by who asked for it, the request checksum, socket reads
and sends, httpx, botocore, our code, waiting); own times of concurrent threads add up, so the buckets' sum can
exceed the wall time. Beside them, the CPU time the reading thread and the senders used.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from typing import Any

from shared.runtime import Runtime
from shared.services import multipart
from shared.services.archive import archive_job

Function = tuple[str, int, str]


def bucket(function: Function, caller: Function | None = None) -> str:
    filename, _, name = function
    if "_hashlib.HASH" in name or "openssl_sha256" in name:
        if caller is not None and "/botocore/" in caller[0]:
            return "sha-256 for SigV4 payload signing (plain-http endpoint only)"
        return "sha-256 of the video (ours)"
    if "crc32" in name or "crc" in filename.rsplit("/", 1)[-1]:
        return "crc32 request checksum"
    if "md5" in name.lower():
        return "md5"
    if "acquire" in name or "'wait'" in name or name.endswith(".wait") or name == "result":
        return "waiting (locks, futures)"
    if "recv" in name or "readinto" in name:
        return "socket reads (mostly waiting for data)"
    if "load_verify_locations" in name:
        return "loading CA certificates"
    if "send" in name and ("socket" in name or "ssl" in name):
        return "socket sends"
    for marker, label in (
        ("/httpx/", "httpx/httpcore/h11"),
        ("/httpcore/", "httpx/httpcore/h11"),
        ("/h11/", "httpx/httpcore/h11"),
        ("/botocore/", "botocore/urllib3"),
        ("/urllib3/", "botocore/urllib3"),
        ("/http/client.py", "botocore/urllib3"),
        ("/shared/", "ours (copies into parts, bookkeeping)"),
    ):
        if marker in filename:
            return label
    return "other"


def buckets(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = {}
    raw: dict[Function, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for function, (_, _, own, _, callers) in raw.items():
        if "_hashlib.HASH" in function[2] or "openssl_sha256" in function[2]:
            shares = [(bucket(function, caller), timing[2]) for caller, timing in callers.items()]
        else:
            shares = [(bucket(function), own)]
        for label, seconds in shares:
            totals[label] = totals.get(label, 0.0) + seconds
    return {label: round(seconds, 3) for label, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def top(stats: pstats.Stats, count: int = 12) -> list[dict[str, Any]]:
    raw: dict[Function, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(raw.items(), key=lambda item: -item[1][2])[:count]
    return [
        {"function": f"{name} ({filename.rsplit('/', 2)[-1]}:{line})", "own_s": round(own, 3), "calls": calls}
        for (filename, line, name), (_, calls, own, *_) in ranked
    ]


def profiled_archive(runtime: Runtime, job_id: str) -> dict[str, Any]:
    sender_cpu = [0.0]
    parts = [0]
    lock = threading.Lock()
    original = multipart.MultipartUpload._send

    def send(self: multipart.MultipartUpload, number: int, data: bytearray) -> Any:
        started = time.thread_time()
        try:
            return original(self, number, data)
        finally:
            spent = time.thread_time() - started
            with lock:
                sender_cpu[0] += spent
                parts[0] += 1

    multipart.MultipartUpload._send = send  # type: ignore[method-assign]
    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        job = profiler.runcall(archive_job, runtime, job_id)
    finally:
        multipart.MultipartUpload._send = original  # type: ignore[method-assign]
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    if job is None or job.status.value != "succeeded":
        raise SystemExit(f"archive did not succeed: {None if job is None else job.status}")
    stats = pstats.Stats(profiler)
    return {
        "bytes": sum(output.bytes for output in job.outputs),
        "key": job.outputs[0].key,
        "wall_s": round(wall, 2),
        "reader_cpu_s": round(cpu, 2),
        "senders_cpu_s": round(sender_cpu[0], 2),
        "parts": parts[0],
        "own_time_by_kind_s": buckets(stats),
        "top": top(stats),
    }
