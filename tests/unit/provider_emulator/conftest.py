from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local.provider_emulator import ProviderEmulator
from tests.unit.provider_emulator.helpers import ProviderClient

HMAC_KEY = "test-webhook-hmac-key"


JOB_SECONDS = 0.4
BACKOFF_SCALE = 0.05


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[ProviderEmulator]:
    emu = ProviderEmulator(
        host="127.0.0.1", port=0, job_seconds=JOB_SECONDS, kie_hmac_key=HMAC_KEY, callback_backoff_scale=BACKOFF_SCALE
    )
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emulator(shared_emulator: ProviderEmulator) -> Iterator[ProviderEmulator]:
    """The shared emulator, reset (tasks, faults, counters, timing, limits) for each test."""
    shared_emulator.reset()
    config = shared_emulator.engine.config
    config.job_seconds = JOB_SECONDS
    config.provider_job_seconds.clear()
    config.callback_backoff_scale = BACKOFF_SCALE
    config.variants = False
    config.limits.clear()
    yield shared_emulator
    shared_emulator.reset()
    config.variants = False
    config.limits.clear()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        yield client


@pytest.fixture
def control(emulator: ProviderEmulator, http: httpx.Client):
    """POST/GET/... against /_control, returning the response."""

    def call(method: str, path: str, json: object = None, **kwargs: object) -> httpx.Response:
        return http.request(method, emulator.control_url() + path, json=json, **kwargs)  # type: ignore[arg-type]

    return call


@pytest.fixture
def clients(emulator: ProviderEmulator, http: httpx.Client) -> dict[str, ProviderClient]:
    return {name: ProviderClient(emulator, http, name) for name in ("vidgo", "kie", "aimlapi", "pixwith", "apimart")}
