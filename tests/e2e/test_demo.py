"""`kling-relay demo --json`, as `make demo` runs it: every check holds and the summary carries full checksums."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_passes_and_its_json_carries_full_sha256_values() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.stdout, finished.stderr[-4000:]
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary["ok"], json.dumps(summary["problems"], indent=2)
    assert finished.returncode == 0
    succeeded = [job for job in summary["jobs"] if job["status"] == "succeeded"]
    assert succeeded
    for job in succeeded:
        assert re.fullmatch(r"[0-9a-f]{64}", job["sha256"]), job
        assert job["outputs"]
        assert all(re.fullmatch(r"[0-9a-f]{64}", output["sha256"]) for output in job["outputs"])
        assert job["sha256"] == job["outputs"][0]["sha256"]
        assert job["bytes"] == sum(output["bytes"] for output in job["outputs"])
