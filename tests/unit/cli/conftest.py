"""Fixtures for the command tests: the SDK's mocked transports, running the CLI, and the runtime it works on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from cli.main import main
from shared.runtime import Runtime
from tests.fixtures.cloud import Cloud
from tests.unit.sdk.conftest import sleeps

__all__ = ["Run", "rt", "run", "sleeps"]

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`kling-relay <argv>` in this process: its exit code, stdout and stderr."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], tier_plans: dict[str, str]) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client()))
