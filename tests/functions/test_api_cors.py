"""The api function's CORS: the console's origin only when one is configured, any origin otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.api import handler
from shared.apigw import CORS_EXPOSED_HEADERS, SettingsCors
from shared.runtime import Runtime, using_runtime
from shared.settings import Settings
from tests.support.events import FakeContext, answer, api_event

CONSOLE = "https://d111111abcdef8.cloudfront.net"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def console_settings() -> Iterator[Runtime]:
    with using_runtime(Runtime(Settings(cors_allow_origin=CONSOLE))) as runtime:
        yield runtime


def providers_from(origin: str) -> dict[str, str]:
    result = answer(handler.lambda_handler(api_event("GET", "/providers", headers={"Origin": origin}), FakeContext()))
    assert result.status == 200
    return result.headers


def test_the_console_origin_is_allowed_and_may_read_the_api_headers(console_settings: Runtime) -> None:
    headers = providers_from(CONSOLE)

    assert headers["access-control-allow-origin"] == CONSOLE
    assert headers["vary"] == "Origin"
    assert set(headers["access-control-expose-headers"].split(",")) == set(CORS_EXPOSED_HEADERS)
    assert "Idempotency-Key" in headers["access-control-allow-headers"]


def test_another_origin_gets_no_cors_headers(console_settings: Runtime) -> None:
    headers = providers_from("https://evil.example")

    assert not [name for name in headers if name.startswith("access-control-")]


def test_without_a_console_any_origin_is_allowed() -> None:
    with using_runtime(Runtime(Settings())):
        headers = providers_from("https://docs.example")

    assert headers["access-control-allow-origin"] == "*"
    assert "vary" not in headers


def test_the_origin_is_read_per_invocation() -> None:
    cors = SettingsCors(lambda: current)
    current = Settings(cors_allow_origin=CONSOLE)
    assert cors.allowed_origin(CONSOLE) == CONSOLE
    current = Settings(cors_allow_origin="https://other.example")
    assert cors.allowed_origin(CONSOLE) is None
    assert cors.to_dict(None) == {}


@pytest.mark.parametrize("bad", ["https://a.example/path", "ftp://a.example", "", "https://a b"])
def test_a_bad_origin_setting_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cors_allow_origin"):
        Settings(cors_allow_origin=bad)
