"""Test-wide setup: fake AWS credentials, moto before any client, and shared fixtures."""

from __future__ import annotations

import os

# Before anything creates a boto3 client: fake credentials, a region, no real endpoints.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "kling-relay-test",
    "POWERTOOLS_METRICS_NAMESPACE": "KlingRelayTest",
    "POWERTOOLS_DEV": "false",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}.items():
    os.environ[_name] = _value
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)

import moto  # noqa: E402  (must be imported before any boto3 client exists)
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests assert what holds, never how fast: Hypothesis' per-example deadline (200 ms) is a wall-clock
# assertion that a busy machine breaks, so it is off for the whole suite.
settings.register_profile("relay", deadline=None)
settings.load_profile("relay")

# `make test` runs the reliability load scenario with this many jobs; `make bench` with 300.
DEFAULT_LOAD_JOBS = 60


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--load-jobs",
        type=int,
        default=DEFAULT_LOAD_JOBS,
        help=f"jobs in tests/reliability/test_load.py: a multiple of 5, at least 50 (default {DEFAULT_LOAD_JOBS})",
    )


pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.jobs", "tests.fixtures.cloud"]

assert moto
