"""A local stack leaves the process as it found it: environment, function log level and log stream."""

from __future__ import annotations

import logging
import os

import pytest

from local.system import LocalOptions, LocalSystem
from shared.observability import logger

pytestmark = [pytest.mark.e2e]


def test_stopping_the_stack_restores_what_starting_it_quieted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    handler = logger.registered_handler
    level, stream = logger.log_level, getattr(handler, "stream", None)
    environment = dict(os.environ)

    with LocalSystem(LocalOptions(job_seconds=1.0)):
        assert os.environ["POWERTOOLS_METRICS_DISABLED"] == "true"
        assert logger.log_level == logging.ERROR

    assert "POWERTOOLS_METRICS_DISABLED" not in os.environ
    assert dict(os.environ) == environment
    assert logger.log_level == level
    assert getattr(handler, "stream", None) is stream
