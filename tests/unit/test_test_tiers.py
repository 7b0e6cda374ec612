"""`make check` and `make e2e` together run every test that `make test` runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tier(name: str) -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{name} := (.+)$", makefile, re.MULTILINE)
    assert match, f"the Makefile defines no {name}"
    return set(match.group(1).split())


def test_every_test_directory_is_in_exactly_one_tier() -> None:
    check, e2e = tier("CHECK_TESTS"), tier("E2E_TESTS")
    with_tests = {
        f"tests/{path.relative_to(ROOT / 'tests').parts[0]}"
        for path in (ROOT / "tests").rglob("test_*.py")
        if len(path.relative_to(ROOT / "tests").parts) > 1
    }
    assert not check & e2e
    assert with_tests == check | e2e
