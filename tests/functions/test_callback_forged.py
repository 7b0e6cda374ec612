"""The callback function refusing what it must: forged, replayed, misaddressed and malformed callbacks.

Every refusal leaves the stored job item exactly as it was, asks the provider nothing, and (for a
failed verification) answers 401 `callback_rejected` with the reason and counts `CallbacksRejected`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from functions.callback import handler
from shared.ids import new_job_id
from shared.models.common import JobStatus
from shared.models.job import JobRecord
from shared.providers.kie_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_kie_callback
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import PROVIDER_KEYS, SIGNING_SECRET, Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, HttpAnswer, answer, api_event

PROVIDERS = Path(__file__).resolve().parent.parent / "events" / "providers"
KIE_TASK = "281e5b0a4c7d4f1e9b3a6c2d8e0f39b9"
VIDGO_TASK = "task-unified-1757165031-uyujaw3d"
KIE_STATUS = "https://api.kie.ai/api/v1/jobs/recordInfo"
VIDGO_STATUS = f"https://api.vidgo.ai/api/generate/status/{VIDGO_TASK}"
HMAC_KEY = "kie-webhook-hmac-key-for-tests"
WINDOW = 120
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def provider_json(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROVIDERS / provider / f"{name}.json").read_text())
    return loaded


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    @property
    def unix(self) -> int:
        return int(self.now.timestamp())


@dataclass
class Scene:
    """A Kie job and a Vidgo job, both running, with the provider status APIs mocked."""

    cloud: Cloud
    rt: Runtime
    clock: Clock
    kie: JobRecord
    vidgo: JobRecord
    status_routes: list[Any] = field(default_factory=list)

    def token(self, job: JobRecord, provider: str | None = None) -> str:
        """The token we would hand `provider` (the job's own by default) for the job."""
        return self.rt.signing_keys().callback_token(job.id, provider or job.provider)

    def item(self, job: JobRecord) -> dict[str, Any]:
        key = to_attributes({schema.PK: schema.job_pk(job.id), schema.SK: schema.JOB_SK})
        found: dict[str, Any] = self.cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)[
            "Item"
        ]
        return found

    def provider_calls(self) -> int:
        return sum(route.call_count for route in self.status_routes)

    def signed(self, task_id: str = KIE_TASK, at: int | None = None, key: str = HMAC_KEY) -> dict[str, str]:
        timestamp = self.clock.unix if at is None else at
        return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign_kie_callback(key, task_id, timestamp)}


def running_job(rt: Runtime, provider: str, task_id: str) -> JobRecord:
    job = build_job(provider=provider)
    rt.jobs.create(job)
    job = rt.jobs.transition(job, JobStatus.QUEUED, provider_task_id=task_id)
    return rt.jobs.transition(job, JobStatus.RUNNING)


@pytest.fixture
def scene(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Iterator[Scene]:
    cloud.set_provider_keys({**PROVIDER_KEYS, "kie_webhook_hmac_key": HMAC_KEY})
    clock = Clock()
    rt = cloud.runtime(httpx.Client(), kie_signature_window_seconds=WINDOW, max_callback_bytes=4096)
    rt.clock = clock
    install_runtime(rt)
    with respx.mock(assert_all_called=False) as router:
        routes = [
            router.get(KIE_STATUS).respond(200, json=provider_json("kie", "record_success")),
            router.get(VIDGO_STATUS).respond(200, json=provider_json("vidgo", "status_finished")),
        ]
        yield Scene(
            cloud=cloud,
            rt=rt,
            clock=clock,
            kie=running_job(rt, "kie", KIE_TASK),
            vidgo=running_job(rt, "vidgo", VIDGO_TASK),
            status_routes=routes,
        )


def post(provider: str, job_id: str, token: str | None, body: Any, headers: dict[str, str] | None = None) -> HttpAnswer:
    query = "" if token is None else f"?token={token}"
    raw = body if isinstance(body, str) else json.dumps(body)
    event = api_event("POST", f"/callbacks/{provider}/{job_id}{query}", raw_body=raw, headers=headers, tenant=None)
    return answer(handler.lambda_handler(event, FakeContext()))


def rejections_counted(output: str) -> float:
    """The `CallbacksRejected` values in the EMF lines the handler printed."""
    total = 0.0
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        value = json.loads(line).get("CallbacksRejected")
        if value is not None:
            total += sum(value) if isinstance(value, list) else value
    return total


# Each forgery: (provider in the path, job, token, body, headers) built from the scene, and the reason.
Forgery = Callable[[Scene], tuple[str, JobRecord, str | None, Any, dict[str, str]]]

KIE_BODY = provider_json("kie", "callback_success")
VIDGO_BODY = provider_json("vidgo", "callback_finished")


def v1_token(job_id: str) -> str:
    """A token as minted before tokens were bound to the provider: HMAC of the job id alone."""
    master = SIGNING_SECRET.encode()
    key = hmac.new(master, b"kling-relay/callback-token/v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(hmac.new(key, job_id.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def _other_task(body: dict[str, Any], key: str, task_id: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    copy["data"][key] = task_id
    return copy


FORGERIES: dict[str, tuple[Forgery, str]] = {
    "missing token": (lambda s: ("vidgo", s.vidgo, None, VIDGO_BODY, {}), "bad_token"),
    "empty token": (lambda s: ("vidgo", s.vidgo, "", VIDGO_BODY, {}), "bad_token"),
    "wrong token": (lambda s: ("vidgo", s.vidgo, "A" * 43, VIDGO_BODY, {}), "bad_token"),
    "token of another job": (lambda s: ("vidgo", s.vidgo, s.token(s.kie), VIDGO_BODY, {}), "bad_token"),
    "truncated token": (lambda s: ("vidgo", s.vidgo, s.token(s.vidgo)[:-1], VIDGO_BODY, {}), "bad_token"),
    "token of this job minted for another provider": (
        lambda s: ("vidgo", s.vidgo, s.token(s.vidgo, "kie"), VIDGO_BODY, {}),
        "bad_token",
    ),
    "old-format token (job id only)": (lambda s: ("vidgo", s.vidgo, v1_token(s.vidgo.id), VIDGO_BODY, {}), "bad_token"),
    "vidgo path with the kie job's token": (lambda s: ("vidgo", s.kie, s.token(s.kie), VIDGO_BODY, {}), "bad_token"),
    "kie token on kie path for a job that moved on to vidgo": (
        lambda s: ("kie", s.vidgo, s.token(s.vidgo, "kie"), KIE_BODY, s.signed()),
        "wrong_provider",
    ),
    "vidgo token on vidgo path for a job that moved on to kie": (
        lambda s: ("vidgo", s.kie, s.token(s.kie, "vidgo"), VIDGO_BODY, {}),
        "wrong_provider",
    ),
    "vidgo body naming another task": (
        lambda s: ("vidgo", s.vidgo, s.token(s.vidgo), _other_task(VIDGO_BODY, "task_id", "task-of-someone-else"), {}),
        "wrong_task",
    ),
    "kie body naming another task, validly signed": (
        lambda s: (
            "kie",
            s.kie,
            s.token(s.kie),
            _other_task(KIE_BODY, "taskId", "other-task"),
            s.signed(task_id="other-task"),
        ),
        "wrong_task",
    ),
    "kie signature for another task": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, s.signed(task_id="other-task")),
        "bad_signature",
    ),
    "kie signature with another key": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, s.signed(key="not-the-key")),
        "bad_signature",
    ),
    "kie signature garbage": (
        lambda s: (
            "kie",
            s.kie,
            s.token(s.kie),
            KIE_BODY,
            {TIMESTAMP_HEADER: str(s.clock.unix), SIGNATURE_HEADER: "bm90IGEgc2lnbmF0dXJl"},
        ),
        "bad_signature",
    ),
    "kie timestamp changed after signing": (
        lambda s: (
            "kie",
            s.kie,
            s.token(s.kie),
            KIE_BODY,
            {**s.signed(), TIMESTAMP_HEADER: str(s.clock.unix - 1)},
        ),
        "bad_signature",
    ),
    "kie stale timestamp": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, s.signed(at=s.clock.unix - WINDOW - 1)),
        "stale_timestamp",
    ),
    "kie future timestamp": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, s.signed(at=s.clock.unix + WINDOW + 1)),
        "future_timestamp",
    ),
    "kie timestamp in milliseconds": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, s.signed(at=s.clock.unix * 1000)),
        "bad_timestamp",
    ),
    "kie no signature headers": (lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, {}), "missing_timestamp"),
    "kie timestamp without signature": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, {TIMESTAMP_HEADER: str(s.clock.unix)}),
        "missing_signature",
    ),
    "kie signature without timestamp": (
        lambda s: ("kie", s.kie, s.token(s.kie), KIE_BODY, {SIGNATURE_HEADER: s.signed()[SIGNATURE_HEADER]}),
        "missing_timestamp",
    ),
}


@pytest.mark.parametrize(("forgery", "reason"), FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_callback_is_refused_and_changes_nothing(
    scene: Scene, capsys: pytest.CaptureFixture[str], forgery: Forgery, reason: str
) -> None:
    provider, job, token, body, headers = forgery(scene)
    before = scene.item(job)
    capsys.readouterr()

    result = post(provider, job.id, token, body, headers)

    assert result.status == 401
    assert result.error_code == "callback_rejected"
    assert result.body["error"]["details"] == {"reason": reason}
    assert scene.item(job) == before
    assert scene.provider_calls() == 0
    assert rejections_counted(capsys.readouterr().out) == 1


def test_signature_window_comes_from_settings(scene: Scene) -> None:
    inside = scene.signed(at=scene.clock.unix - WINDOW)  # exactly at the edge of a 120 s window

    result = post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, inside)

    assert (result.status, result.body["status"]) == (200, "archiving")


def test_replay_outside_the_window_is_refused(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    headers = scene.signed()
    first = post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, headers)
    assert first.body == {"result": "applied", "status": "archiving"}
    before = scene.item(scene.kie)
    calls = scene.provider_calls()
    capsys.readouterr()

    scene.clock.now += timedelta(seconds=WINDOW + 1)
    replay = post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, headers)

    assert (replay.status, replay.error_code) == (401, "callback_rejected")
    assert replay.body["error"]["details"] == {"reason": "stale_timestamp"}
    assert scene.item(scene.kie) == before
    assert scene.provider_calls() == calls
    assert rejections_counted(capsys.readouterr().out) == 1


def test_replay_inside_the_window_is_a_harmless_no_op(scene: Scene) -> None:
    headers = scene.signed()
    first = post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, headers)
    before = scene.item(scene.kie)

    scene.clock.now += timedelta(seconds=WINDOW - 1)
    replay = post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, headers)

    assert first.body == {"result": "applied", "status": "archiving"}
    assert (replay.status, replay.body) == (200, {"result": "ignored", "status": "archiving"})
    assert scene.item(scene.kie) == before
    assert scene.provider_calls() == 1


def test_replay_of_an_early_progress_callback_only_rereads(scene: Scene) -> None:
    """Replaying a signed callback while the job runs can only make us ask the provider again."""
    running = provider_json("kie", "record_generating")
    scene.status_routes[0].respond(200, json=running)
    headers = scene.signed()
    before = scene.item(scene.kie)

    results = [post("kie", scene.kie.id, scene.token(scene.kie), KIE_BODY, headers) for _ in range(3)]

    assert [r.body for r in results] == [{"result": "applied", "status": "running"}] * 3
    assert scene.item(scene.kie) == before
    assert scene.provider_calls() == 3


# -- routing, size and shape -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["runway", "KIE", "pixwith", "aimlapi", "apimart"])
def test_unknown_or_poll_only_provider_path_is_not_found(
    scene: Scene, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    job = build_job(provider="pixwith")
    scene.rt.jobs.create(job)
    before = scene.item(job)
    capsys.readouterr()

    result = post(provider, job.id, scene.token(job, provider), {"data": {"task_id": "t"}})

    assert result.status == 404
    assert result.body["error"]["details"] == {"reason": "unknown_provider"}
    assert scene.item(job) == before
    assert scene.provider_calls() == 0
    assert rejections_counted(capsys.readouterr().out) == 1


def test_unknown_job_is_not_found(scene: Scene) -> None:
    missing = new_job_id()

    result = post("vidgo", missing, scene.rt.signing_keys().callback_token(missing, "vidgo"), VIDGO_BODY)

    assert (result.status, result.error_code) == (404, "not_found")
    assert scene.rt.jobs.get(missing) is None
    assert scene.provider_calls() == 0


def test_oversized_body_is_refused_before_anything_else(scene: Scene) -> None:
    body = json.dumps({**VIDGO_BODY, "padding": "x" * 4096})
    before = scene.item(scene.vidgo)

    result = post("vidgo", scene.vidgo.id, scene.token(scene.vidgo), body)

    assert (result.status, result.error_code) == (413, "payload_too_large")
    assert scene.item(scene.vidgo) == before
    assert scene.provider_calls() == 0


def test_body_at_the_size_limit_is_read(scene: Scene) -> None:
    padding = 4096 - len(json.dumps({**VIDGO_BODY, "padding": ""}).encode())
    body = json.dumps({**VIDGO_BODY, "padding": "x" * padding})
    assert len(body.encode()) == 4096

    result = post("vidgo", scene.vidgo.id, scene.token(scene.vidgo), body)

    assert (result.status, result.body["status"]) == (200, "archiving")


@pytest.mark.parametrize(
    ("provider", "raw", "reason"),
    [
        ("vidgo", "task finished", "not_json"),
        ("vidgo", "[1, 2, 3]", "not_json_object"),
        ("vidgo", json.dumps({"code": 200}), "missing_data"),
        ("vidgo", json.dumps({"data": {"status": "finished"}}), "missing_task_id"),
        ("vidgo", json.dumps({"data": {"task_id": VIDGO_TASK, "status": 7}}), "invalid_body"),
        ("kie", "<xml/>", "not_json"),
        ("kie", "", "not_json"),
    ],
)
def test_malformed_body_with_a_valid_token_is_refused(
    scene: Scene, capsys: pytest.CaptureFixture[str], provider: str, raw: str, reason: str
) -> None:
    job = scene.kie if provider == "kie" else scene.vidgo
    before = scene.item(job)
    capsys.readouterr()

    result = post(provider, job.id, scene.token(job), raw, scene.signed() if provider == "kie" else {})

    assert (result.status, result.error_code) == (401, "callback_rejected")
    assert result.body["error"]["details"] == {"reason": reason}
    assert scene.item(job) == before
    assert scene.provider_calls() == 0
    assert rejections_counted(capsys.readouterr().out) == 1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[" * 50_000 + "]" * 50_000, id="50000-nested-arrays"),
        pytest.param('{"a":' * 20_000 + "1" + "}" * 20_000, id="20000-nested-objects"),
        pytest.param(
            '{"code": ' + "1" * 5_000 + ', "data": {"task_id": "' + VIDGO_TASK + '", "status": "finished"}}',
            id="5000-digits",
        ),
    ],
)
def test_json_the_parser_refuses_is_a_rejection_in_the_error_shape(scene: Scene, raw: str) -> None:
    scene.rt.settings = scene.rt.settings.model_copy(update={"max_callback_bytes": 256 * 1024})
    before = scene.item(scene.vidgo)

    result = post("vidgo", scene.vidgo.id, scene.token(scene.vidgo), raw)

    assert (result.status, result.error_code) == (401, "callback_rejected")
    assert result.body["error"]["details"] == {"reason": "not_json"}
    assert scene.item(scene.vidgo) == before
    assert scene.provider_calls() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_callback_of_another_content_type_is_read_as_its_bytes(scene: Scene, content_type: str) -> None:
    """Providers do not all label their JSON; the body is verified and parsed whatever the label says."""
    result = post("vidgo", scene.vidgo.id, scene.token(scene.vidgo), VIDGO_BODY, {"Content-Type": content_type})
    assert (result.status, result.body["status"]) == (200, "archiving")


def test_an_accepted_callback_counts_no_rejection(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    result = post("vidgo", scene.vidgo.id, scene.token(scene.vidgo), VIDGO_BODY)

    assert result.status == 200
    assert rejections_counted(capsys.readouterr().out) == 0
