"""Building a client: environment variables, the base URL it accepts, and what every request carries."""

from __future__ import annotations

import httpx
import kling_relay
import pytest
from kling_relay import ConfigurationError, KlingRelay, MotionControl

from shared.models.common import JobStatus
from tests.unit.sdk.conftest import API_KEY, job_json


def test_the_url_and_key_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_RELAY_URL", "https://api.example.com/v1/")
    monkeypatch.setenv("KLING_RELAY_API_KEY", "from-env")
    with KlingRelay() as relay:
        assert relay.base_url == "https://api.example.com/v1"
        assert relay._config.api_key == "from-env"
    with KlingRelay("https://other.example.com/v1", "given") as relay:
        assert relay.base_url == "https://other.example.com/v1"
        assert relay._config.api_key == "given"


@pytest.mark.parametrize("missing", ["KLING_RELAY_URL", "KLING_RELAY_API_KEY"])
def test_a_missing_url_or_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setenv("KLING_RELAY_URL", "https://api.example.com/v1")
    monkeypatch.setenv("KLING_RELAY_API_KEY", "k")
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        KlingRelay()
    monkeypatch.setenv(missing, "  ")
    with pytest.raises(ConfigurationError, match=missing):
        KlingRelay()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.example.com/v1", "unencrypted"),
        ("ftp://api.example.com/v1", "http"),
        ("api.example.com/v1", "http"),
        ("https://user:secret@api.example.com/v1", "credentials"),
        ("https://api.example.com/v1?x=1", "query"),
    ],
)
def test_a_base_url_the_key_must_not_go_to_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as refused:
        KlingRelay(url, "k")
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://localhost:3000/v1/", "http://[::1]:9/v1"])
def test_plain_http_is_allowed_to_this_machine(url: str) -> None:
    with KlingRelay(url, "k") as relay:
        assert relay.base_url == url.rstrip("/")


def test_every_api_request_carries_the_key_and_the_sdk_version(client, sleeps) -> None:
    relay, api = client(lambda _: httpx.Response(200, json=job_json()))
    relay.jobs.get("job_1")
    request = api.requests[0]
    assert str(request.url) == "https://relay.test/v1/jobs/job_1"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"] == f"kling-relay-python/{kling_relay.__version__}"


def test_create_sends_only_the_fields_given(client, sleeps) -> None:
    relay, api = client(lambda _: httpx.Response(202, json=job_json(JobStatus.SUBMITTING)))
    relay.jobs.create(
        prompt="a dancer",
        provider="kie",
        duration=10,
        sound=False,
        metadata={"order": "42"},
        motion_control=MotionControl(image_url="https://e.com/a.png", video_url="https://e.com/a.mp4"),
        extra_body={"priority": "high"},
    )
    relay.jobs.create(motion_control={"image_url": "https://e.com/a.png", "video_url": "https://e.com/b.mp4"})
    first, second = (request.read() for request in api.requests)
    assert httpx.Response(200, content=first).json() == {
        "provider": "kie",
        "prompt": "a dancer",
        "duration": 10,
        "sound": False,
        "metadata": {"order": "42"},
        "motion_control": {"image_url": "https://e.com/a.png", "video_url": "https://e.com/a.mp4"},
        "priority": "high",
    }
    assert httpx.Response(200, content=second).json() == {
        "motion_control": {"image_url": "https://e.com/a.png", "video_url": "https://e.com/b.mp4"}
    }
    assert all(request.url.path == "/v1/jobs" and request.method == "POST" for request in api.requests)


@pytest.mark.parametrize("job_id", ["", "job_1/cancel", "../keys", "..", "job_1?status=x", "job_1#x", "job 1"])
def test_a_job_id_cannot_reach_another_route(client, sleeps, job_id: str) -> None:
    relay, api = client(lambda _: httpx.Response(200, json=job_json()))
    with pytest.raises(ValueError, match="not a job id"):
        relay.jobs.get(job_id)
    assert api.requests == []


def test_a_client_closes_only_the_http_client_it_made() -> None:
    mine = httpx.Client()
    with KlingRelay("https://api.example.com/v1", "k", http_client=mine):
        pass
    assert not mine.is_closed
    mine.close()
    relay = KlingRelay("https://api.example.com/v1", "k")
    relay.close()
    assert relay._http.is_closed
