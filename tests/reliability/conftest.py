"""Reliability fixtures: one rig (local stack) per test module, faults cleared around each test.

A module that needs other stack options defines its own module-scoped `rig_options` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.system import LocalOptions
from tests.reliability.harness import DEFAULT_OPTIONS, Rig, open_rig


@pytest.fixture(scope="session")
def load_jobs(pytestconfig: pytest.Config) -> int:
    jobs = int(pytestconfig.getoption("--load-jobs"))
    if jobs < 50 or jobs % 5:
        raise pytest.UsageError(f"--load-jobs must be a multiple of 5 and at least 50, got {jobs}")
    return jobs


@pytest.fixture(scope="module")
def rig_options() -> LocalOptions:
    return DEFAULT_OPTIONS


@pytest.fixture(scope="module")
def rig(rig_options: LocalOptions) -> Iterator[Rig]:
    with open_rig(rig_options) as started:
        yield started


@pytest.fixture
def system(rig: Rig) -> Iterator[Rig]:
    """The module's rig with no faults or job-time changes left over from another test."""
    rig.reset_faults()
    yield rig
    rig.reset_faults()
