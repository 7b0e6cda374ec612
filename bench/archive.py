"""Archive: a large result streamed from the provider emulator into S3, against the two halves it is made of.

Three processes, so that nobody's copy of the data is counted as ours: a moto server (S3 and DynamoDB),
the provider emulator (its `result_size` fault makes the task's result exactly N bytes, generated as it
is sent), and for each transfer a fresh worker (`bench.archive_worker`). In every run, on the same result:

- archive: the real `archive_job` on a job stored in `archiving` with the emulator's result URL;
- download: the archive's download alone, through the same client, read and discarded (no upload);
- upload from memory: the same bytes, already in memory, uploaded with boto3's `upload_fileobj` (no download);
- upload_file: boto3's `upload_file` from a local file (the figure this benchmark used to compare with).

The archive cannot be faster than the slower of its two halves, so that is what it is measured against. The CPU
time each process (worker, moto, emulator) spends on a transfer is taken from the kernel's accounting around it:
on two shared cores it shows where the time goes. The order of the four rotates between runs. One profiled
archive at the largest size (`bench.archive_profile`) breaks the worker's own time down further.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.common import ROOT, GiB, MiB, Report, free_port, median, server_process, table
from shared.ids import new_job_id
from shared.models.common import JobStatus, ProviderName, utcnow
from shared.models.job import JobRecord
from shared.models.request import JobRequest
from shared.providers.registry import build_provider
from shared.repository import schema
from shared.repository.jobs import JobRepository
from shared.secrets import ProviderCredentials
from shared.settings import Settings

TABLE = "bench-archive-jobs"
BUCKET = "bench-archive-outputs"
PROVIDER: ProviderName = "aimlapi"  # no callbacks: the task just ends and waits to be fetched
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
THROUGHPUT_RATIO_TARGET = 0.8
PEAK_RSS_TARGET_MIB = 128
FLATNESS_TOLERANCE_MIB = 8  # one archive part
KINDS = ("archive", "download", "upload_memory", "upload_file")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Rig:
    """The moto server, the emulator and the clients the driver uses to set each run up."""

    def __init__(self, s3_url: str, emulator_url: str) -> None:
        self.s3_url = s3_url
        self.emulator_url = emulator_url
        session = boto3.session.Session(
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        self.s3 = session.client("s3", endpoint_url=s3_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=s3_url)
        self.http = httpx.Client(timeout=60)
        settings = Settings(aimlapi_base_url=f"{emulator_url}/{PROVIDER}")
        credentials = ProviderCredentials(aimlapi=f"emulator-{PROVIDER}-key")
        adapter = build_provider(PROVIDER, settings, credentials, self.http)
        if adapter is None:
            raise RuntimeError(f"no adapter for {PROVIDER}")
        self.provider = adapter
        self.jobs = JobRepository(TABLE, self.dynamodb)

    def create_resources(self) -> None:
        self.dynamodb.create_table(TableName=TABLE, **schema.table_definition())
        self.s3.create_bucket(Bucket=BUCKET)

    def result_of(self, size: int, label: str) -> tuple[str, str]:
        """An emulator task whose result is exactly `size` bytes; (task id, result URL)."""
        prompt = f"benchmark result {label}"
        fault = {"kind": "result_size", "provider": PROVIDER, "match_prompt": label, "times": 1, "bytes": size}
        self.http.post(f"{self.emulator_url}/_control/faults", json=fault).raise_for_status()
        submitted = self.provider.submit(JobRequest(prompt=prompt, provider=PROVIDER), None)
        task_path = httpx.URL(f"{self.emulator_url}/_control/tasks/").copy_with(
            raw_path=f"/_control/tasks/{_quote(submitted.task_id)}".encode()
        )
        deadline = time.monotonic() + 30
        while True:
            task = self.http.get(task_path).json()
            if task["state"] == "succeeded":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"emulator task {submitted.task_id} did not finish: {task['state']}")
            time.sleep(0.05)
        if task["result_bytes"] != size:
            raise RuntimeError(f"the emulator's result is {task['result_bytes']} bytes, not {size}")
        return submitted.task_id, task["result_urls"][0]

    def archiving_job(self, task_id: str, url: str) -> JobRecord:
        now = utcnow()
        job = JobRecord(
            id=new_job_id(),
            tenant_id="bench",
            status=JobStatus.ARCHIVING,
            version=3,
            provider=PROVIDER,
            provider_task_id=task_id,
            request=JobRequest(prompt="benchmark", provider=PROVIDER),
            progress=100,
            result_urls=(url,),
            created_at=now,
            updated_at=now,
            deadline_at=now + timedelta(hours=1),
        )
        self.jobs.create(job)
        return job

    def save(self, url: str, path: Path) -> str:
        """The result's bytes to a local file (the baseline's source); their SHA-256."""
        digest = hashlib.sha256()
        with self.http.stream("GET", url) as response, path.open("wb") as out:
            response.raise_for_status()
            for chunk in response.iter_bytes(MiB):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def remove(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)


def _quote(task_id: str) -> str:
    from urllib.parse import quote

    return quote(task_id, safe="")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15 of stat


class Servers:
    """The moto server's and the emulator's process ids, to account their CPU time per transfer."""

    def __init__(self, moto: int, emulator: int) -> None:
        self.pids = {"moto": moto, "emulator": emulator}

    def cpu(self) -> dict[str, float]:
        return {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}


def worker(env: dict[str, str], servers: Servers, *args: str) -> dict[str, Any]:
    before = servers.cpu()
    done = subprocess.run(
        [sys.executable, "-m", "bench.archive_worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    after = servers.cpu()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_seconds"] = {name: round(after[name] - before[name], 3) for name in after}
    return result


def one_run(
    rig: Rig, env: dict[str, str], servers: Servers, size: int, run_number: int, scratch: Path
) -> dict[str, Any]:
    label = f"[size-{size}-run-{run_number}]"
    task_id, url = rig.result_of(size, label)
    source = scratch / f"result-{size}-{run_number}.mp4"
    expected_sha = rig.save(url, source)
    job = rig.archiving_job(task_id, url)
    results: dict[str, dict[str, Any]] = {}
    shift = run_number % len(KINDS)
    order = list(KINDS[shift:] + KINDS[:shift])
    try:
        for kind in order:
            if kind == "archive":
                results[kind] = worker(env, servers, "archive", job.id)
            elif kind == "download":
                results[kind] = worker(env, servers, "download", url)
            elif kind == "upload_memory":
                results[kind] = worker(env, servers, "upload-memory", str(source), f"baseline/{job.id}-memory.mp4")
            else:
                results[kind] = worker(env, servers, "upload", str(source), f"baseline/{job.id}.mp4")
            if "key" in results[kind]:
                rig.remove(results[kind]["key"])
    finally:
        source.unlink(missing_ok=True)
    if results["archive"]["sha256"] != expected_sha or results["archive"]["bytes"] != size:
        raise RuntimeError(f"archived bytes differ from the emulator's result ({label})")
    for kind in KINDS[1:]:
        if results[kind]["bytes"] != size:
            raise RuntimeError(f"{kind} moved {results[kind]['bytes']} bytes, not {size}")
    return {"order": order, **results}


def profile_run(rig: Rig, env: dict[str, str], servers: Servers, size: int) -> dict[str, Any]:
    task_id, url = rig.result_of(size, f"[size-{size}-profile]")
    job = rig.archiving_job(task_id, url)
    result = worker(env, servers, "profile", job.id)
    rig.remove(result["key"])
    return result


def summarize(size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(kind: str) -> dict[str, float]:
        seconds = median([r[kind]["seconds"] for r in runs])
        growth = median([(r[kind]["peak_rss_kib"] - r[kind]["rss_before_kib"]) / 1024 for r in runs])
        return {
            "seconds": round(seconds, 2),
            "mib_per_s": round(size / MiB / seconds, 1),
            "worker_cpu_s": round(median([r[kind]["cpu_seconds"] for r in runs]), 2),
            "moto_cpu_s": round(median([r[kind]["server_cpu_seconds"]["moto"] for r in runs]), 2),
            "emulator_cpu_s": round(median([r[kind]["server_cpu_seconds"]["emulator"] for r in runs]), 2),
            "peak_rss_growth_mib": round(growth, 1),
            "peak_rss_mib": round(median([r[kind]["peak_rss_kib"] / 1024 for r in runs]), 1),
            "rss_before_mib": round(median([r[kind]["rss_before_kib"] / 1024 for r in runs]), 1),
        }

    kinds = {kind: stats(kind) for kind in KINDS}
    slower = min(("download", "upload_memory"), key=lambda kind: kinds[kind]["mib_per_s"])
    archive = kinds["archive"]["mib_per_s"]
    return {
        "bytes": size,
        "runs": len(runs),
        **kinds,
        "slower_half": slower,
        "ratio_to_slower_half": round(archive / kinds[slower]["mib_per_s"], 2),
        "ratio_to_upload_file": round(archive / kinds["upload_file"]["mib_per_s"], 2),
        "raw": runs,
    }


def _size_label(size: int) -> str:
    return f"{size // GiB} GiB" if size >= GiB else f"{size // MiB} MiB"


def run(quick: bool) -> Report:
    report = Report("archive", f"python -m bench archive{' --quick' if quick else ''}", quick)
    plan = [(10 * MiB, 1), (100 * MiB, 1), (256 * MiB, 1)] if quick else [(10 * MiB, 3), (100 * MiB, 3), (GiB, 3)]
    s3_port, emulator_port = free_port(), free_port()
    env = {**os.environ, **CREDENTIALS}
    env.pop("AWS_PROFILE", None)
    with (
        server_process(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], s3_port, env) as moto,
        server_process(
            ["-m", "local.provider_emulator", "--port", str(emulator_port), "--job-seconds", "0"], emulator_port, env
        ) as emulator,
        tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch,
    ):
        servers = Servers(moto.pid, emulator.pid)
        s3_url, emulator_url = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{emulator_port}"
        rig = Rig(s3_url, emulator_url)
        rig.create_resources()
        worker_env = {
            **env,
            "AWS_ENDPOINT_URL": s3_url,
            "KR_TABLE_NAME": TABLE,
            "KR_BUCKET_NAME": BUCKET,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        sizes: dict[str, Any] = {}
        for size, runs in plan:
            done = [one_run(rig, worker_env, servers, size, n, Path(scratch)) for n in range(runs)]
            sizes[_size_label(size)] = summarize(size, done)
            print(f"  {_size_label(size)}: {runs} run(s) done", flush=True)
        profile = profile_run(rig, worker_env, servers, plan[-1][0])

    print("archive: streamed from the emulator into S3 (moto server), against its halves measured alone; medians")
    rows = []
    for label, size in sizes.items():
        for kind in KINDS:
            k = size[kind]
            rows.append(
                [label, kind, f"{k['seconds']:.2f}", f"{k['mib_per_s']:.0f}", f"{k['worker_cpu_s']:.1f}",
                 f"{k['moto_cpu_s']:.1f}", f"{k['emulator_cpu_s']:.1f}", f"{k['peak_rss_growth_mib']:.1f}"]
            )  # fmt: skip
    header = ["size", "transfer", "s", "MiB/s", "worker CPU s", "moto CPU s", "emulator CPU s", "+RSS MiB"]
    print(table(header, rows))
    ratios = [
        [label, size["slower_half"], f"{size['ratio_to_slower_half']:.2f}x", f"{size['ratio_to_upload_file']:.2f}x"]
        for label, size in sizes.items()
    ]
    print(table(["size", "slower half", "archive vs slower half", "archive vs upload_file"], ratios))
    print(f"profile of one archive of {_size_label(plan[-1][0])} (profiler on, so slower than measured):")
    print(f"  wall {profile['wall_s']} s; reading thread CPU {profile['reader_cpu_s']} s; "
          f"part senders CPU {profile['senders_cpu_s']} s over {profile['parts']} parts")  # fmt: skip
    print(
        "  own time by kind, all threads (s): "
        + ", ".join(f"{k} {v}" for k, v in profile["own_time_by_kind_s"].items())
    )

    largest, smallest = list(sizes)[-1], next(iter(sizes))
    big, small = sizes[largest], sizes[smallest]
    slower = big["slower_half"]
    rates = f"{big['archive']['mib_per_s']:.0f} vs {big[slower]['mib_per_s']:.0f} MiB/s ({slower})"
    report.check(
        f"throughput vs the slower half at {largest}",
        f">= {THROUGHPUT_RATIO_TARGET}x",
        f"{big['ratio_to_slower_half']:.2f}x ({rates})",
        big["ratio_to_slower_half"] >= THROUGHPUT_RATIO_TARGET,
    )
    peak = max(s["archive"]["peak_rss_growth_mib"] for s in sizes.values())
    report.check(
        "archive peak RSS growth (largest over sizes)",
        f"< {PEAK_RSS_TARGET_MIB} MiB",
        f"{peak:.1f} MiB (process peak {big['archive']['peak_rss_mib']:.0f} MiB at {largest})",
        peak < PEAK_RSS_TARGET_MIB,
    )
    big_growth, small_growth = big["archive"]["peak_rss_growth_mib"], small["archive"]["peak_rss_growth_mib"]
    growth = big_growth - small_growth
    report.check(
        f"peak memory flat from {smallest} to {largest}",
        f"growth at {largest} within {FLATNESS_TOLERANCE_MIB} MiB (one part) of growth at {smallest}",
        f"{big_growth:.1f} vs {small_growth:.1f} MiB ({growth:+.1f})",
        growth <= FLATNESS_TOLERANCE_MIB,
    )
    report.figures = {"sizes": sizes, "profile": profile}
    if quick:
        report.notes.append("--quick: 10 MiB, 100 MiB and 256 MiB, one run each (the targets name 1 GiB).")
    report.notes.append(
        "+RSS: the worker's peak RSS (ru_maxrss) minus its RSS just before the transfer; archive time includes "
        "reading the job, the download, the multipart upload, the checksum tag and the job's final write. "
        "CPU s: user + system time of each process during the transfer (two cores: at most 2 s per second)."
    )
    return report
