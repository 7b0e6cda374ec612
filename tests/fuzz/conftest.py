"""Options for the API fuzz suite: how many generated cases each operation gets."""

from __future__ import annotations

import pytest

# `make test` runs this many cases per operation and pass; `make fuzz` passes a larger number.
DEFAULT_EXAMPLES = 30


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"generated cases per API operation in tests/fuzz (default {DEFAULT_EXAMPLES})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: generated requests against the local API's OpenAPI document")


@pytest.fixture(scope="session")
def fuzz_examples(pytestconfig: pytest.Config) -> int:
    examples = int(pytestconfig.getoption("--fuzz-examples"))
    if examples < 1:
        raise pytest.UsageError(f"--fuzz-examples must be at least 1, got {examples}")
    return examples
