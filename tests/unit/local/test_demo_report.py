"""`kling-relay demo`: its JSON carries full checksums (only the table shortens them); local/ never imports cli/."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from local.demo import DemoReport, Row, render

ROOT = Path(__file__).resolve().parents[3]
FIRST = hashlib.sha256(b"first").hexdigest()
SECOND = hashlib.sha256(b"second").hexdigest()


def report() -> DemoReport:
    rows = [
        Row(
            label="pixwith i2v x2",
            job_id="job_1",
            provider="pixwith",
            mode="image-to-video",
            completed_by="poll",
            status="succeeded",
            seconds=4.4,
            bytes=11,
            sha256=FIRST,
            outputs=[{"bytes": 5, "sha256": FIRST}, {"bytes": 6, "sha256": SECOND}],
        ),
        Row(
            label="kie t2v -> refused",
            job_id="job_2",
            provider="kie",
            mode="text-to-video",
            completed_by="callback",
            status="failed",
            seconds=3.6,
            bytes=0,
            sha256="-",
            error="refused",
        ),
    ]
    return DemoReport(rows=rows, events=[], problems=[], seconds=8.0)


def test_the_json_summary_carries_every_output_checksum_in_full() -> None:
    summary = json.loads(json.dumps(report().as_json()))
    first, refused = summary["jobs"]
    assert first["sha256"] == FIRST
    assert [output["sha256"] for output in first["outputs"]] == [FIRST, SECOND]
    assert (refused["sha256"], refused["outputs"]) == ("-", [])


def test_only_the_table_shortens_them() -> None:
    table = render(report())
    assert FIRST[:16] in table
    assert FIRST not in table


def test_local_never_imports_cli() -> None:
    for path in (ROOT / "local").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            assert not [n for n in names if n == "cli" or n.startswith("cli.")], f"{path.relative_to(ROOT)} imports cli"
