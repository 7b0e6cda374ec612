"""The Vidgo adapter against its documented API, through the real submit()/status() paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.errors import CallbackRejectedError
from shared.models.request import JobRequest
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.vidgo import VidgoProvider
from tests.unit.providers import support
from tests.unit.providers.support import Recorder, ok

TASK_ID = "task-unified-1757165031-uyujaw3d"
CALLBACK = "https://api.example.com/v1/callbacks/vidgo/job_01jd0000000000000000000000?token=t0k"
IMAGE = "https://img.example.com/first.png"


def event(name: str) -> dict[str, Any]:
    return support.event("vidgo", name)


def answering(*answers: httpx.Response | Exception) -> tuple[VidgoProvider, Recorder]:
    provider, recorder = support.build(VidgoProvider, "vidgo-test-key", *answers)
    assert isinstance(provider, VidgoProvider)
    return provider, recorder


# -- capabilities ----------------------------------------------------------------------------------


def test_plain_text_and_image_requests_are_supported() -> None:
    assert VidgoProvider.capabilities.check(JobRequest(prompt="p", duration=10, sound=True, aspect_ratio="9:16")) == []
    assert VidgoProvider.capabilities.check(JobRequest(prompt="p", first_frame_url=IMAGE)) == []
    assert VidgoProvider.capabilities.callbacks
    assert not VidgoProvider.capabilities.signed_callbacks


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"quality": "pro"}, "quality", "single quality tier"),
        ({"first_frame_url": IMAGE, "last_frame_url": IMAGE}, "last_frame_url", "does not support a last frame"),
        ({"negative_prompt": "blur"}, "negative_prompt", "does not support a negative prompt"),
        ({"cfg_scale": 0.5}, "cfg_scale", "does not support cfg_scale"),
        ({"num_outputs": 2}, "num_outputs", "at most 1 output"),
        ({"prompt_optimization": True}, "prompt_optimization", "does not offer prompt optimization"),
        ({"watermark": False}, "watermark", "does not let the watermark be chosen"),
        ({"first_frame_url": IMAGE, "aspect_ratio": "1:1"}, "aspect_ratio", "takes the aspect ratio from the first"),
    ],
)
def test_each_unsupported_field_is_named_with_its_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    violations = VidgoProvider.capabilities.check(JobRequest(prompt="p", **fields))
    assert [(v.field, v.provider) for v in violations] == [(field, "vidgo")]
    assert rule in violations[0].rule


def test_no_price_is_known() -> None:
    provider, _ = answering()
    assert provider.estimate_cost(JobRequest(prompt="p")) is None


# -- submit ----------------------------------------------------------------------------------------


def test_text_to_video_submit_has_the_documented_shape() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    result = provider.submit(JobRequest(prompt="A fox in the snow"), CALLBACK)

    sent = recorder.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.vidgo.ai/api/generate/submit"
    assert sent.headers["Authorization"] == "Bearer vidgo-test-key"
    assert sent.headers["Content-Type"] == "application/json"
    assert recorder.last_json() == {
        "model": "kling-2.6",
        "callback_url": CALLBACK,
        "input": {"prompt": "A fox in the snow", "sound": False, "aspect_ratio": "16:9", "duration": 5},
    }
    assert type(recorder.last_json()["input"]["duration"]) is int
    assert result.task_id == TASK_ID
    assert result.raw_status == "not_started"


def test_text_to_video_options_are_mapped() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(JobRequest(prompt="p", duration=10, sound=True, aspect_ratio="9:16"), None)
    body = recorder.last_json()
    assert body == {
        "model": "kling-2.6",
        "input": {"prompt": "p", "sound": True, "aspect_ratio": "9:16", "duration": 10},
    }
    assert "callback_url" not in body


def test_image_to_video_sends_the_first_frame_and_no_aspect_ratio() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(JobRequest(prompt="The cat turns", first_frame_url=IMAGE, sound=True), CALLBACK)
    assert recorder.last_json() == {
        "model": "kling-2.6",
        "callback_url": CALLBACK,
        "input": {"prompt": "The cat turns", "image_urls": [IMAGE], "sound": True, "duration": 5},
    }


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"code": 200, "data": {"status": "not_started"}}, "data.task_id"),
        ({"code": 200, "data": {"task_id": ""}}, "data.task_id"),
        ({"code": 200, "data": {"task_id": 12345}}, "data.task_id"),
        ({"code": 200}, "no data object"),
        ({"code": 200, "data": None}, "no data object"),
    ],
)
def test_a_submit_answer_without_a_task_id_is_malformed(body: dict[str, Any], what: str) -> None:
    provider, _ = answering(ok(body))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert "unexpected answer" in caught.value.message
    assert what in caught.value.message


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (401, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.UNAVAILABLE),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
    ],
)
def test_an_error_code_inside_a_200_envelope_is_an_error(code: int, kind: ErrorKind) -> None:
    provider, _ = answering(ok({"code": code, "message": "Nope"}, **{"Retry-After": "9"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert (caught.value.kind, caught.value.provider_code, caught.value.message) == (kind, str(code), "Nope")
    assert caught.value.retry_after == 9.0


# -- status ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state", "progress"),
    [
        ("status_not_started", ProviderState.QUEUED, 0),
        ("status_running", ProviderState.RUNNING, 45),
        ("status_finished", ProviderState.SUCCEEDED, 100),
        ("status_failed", ProviderState.FAILED, 0),
    ],
)
def test_every_documented_status_value_is_normalized(name: str, state: ProviderState, progress: int) -> None:
    provider, recorder = answering(ok(event(name)))
    status = provider.status(TASK_ID)

    sent = recorder.last
    assert sent.method == "GET"
    assert str(sent.url) == f"https://api.vidgo.ai/api/generate/status/{TASK_ID}"
    assert sent.headers["Authorization"] == "Bearer vidgo-test-key"
    assert (status.task_id, status.state, status.raw_status, status.progress) == (
        TASK_ID,
        state,
        event(name)["data"]["status"],
        progress,
    )


def test_finished_status_returns_only_video_files() -> None:
    provider, _ = answering(ok(event("status_finished")))
    status = provider.status(TASK_ID)
    assert status.result_urls == ("https://storage.vidgo.ai/generated/video-uyujaw3d.mp4",)
    assert status.error_message is None
    assert status.result_expires_at is None
    assert status.credits_used is None


def test_finished_without_a_video_file_succeeds_with_no_result() -> None:
    body = event("status_finished")
    body["data"]["files"] = [
        {"file_url": "https://storage.vidgo.ai/x.jpg", "file_type": "image"},
        {"file_type": "video"},
    ]
    provider, _ = answering(ok(body))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == ()


def test_failed_status_carries_the_error_message() -> None:
    provider, _ = answering(ok(event("status_failed")))
    status = provider.status(TASK_ID)
    assert status.error_message == "Content policy violation detected in prompt"
    assert status.result_urls == ()


def test_progress_outside_0_to_100_is_clamped() -> None:
    body = event("status_running")
    body["data"]["progress"] = 130.7
    provider, _ = answering(ok(body))
    assert provider.status(TASK_ID).progress == 100


def test_the_task_id_is_escaped_in_the_status_path() -> None:
    odd = "a/b?c d"
    body = event("status_running")
    body["data"]["task_id"] = odd
    provider, recorder = answering(ok(body))
    assert provider.status(odd).task_id == odd
    assert recorder.last.url.raw_path == b"/api/generate/status/a%2Fb%3Fc%20d"


@pytest.mark.parametrize(
    "data",
    [
        {"task_id": TASK_ID},
        {"task_id": TASK_ID, "status": "running", "files": "nope"},
        {"task_id": TASK_ID, "status": 3},
    ],
)
def test_an_unreadable_status_is_malformed(data: dict[str, Any]) -> None:
    provider, _ = answering(ok({"code": 200, "data": data}))
    with pytest.raises(ProviderError, match="unexpected answer: status data unreadable") as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.RETRYABLE


# -- HTTP errors -----------------------------------------------------------------------------------


def test_403_on_status_is_a_task_of_another_account() -> None:
    provider, _ = answering(httpx.Response(403, json={"code": 403, "message": "error 403"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert (caught.value.kind, caught.value.http_status, caught.value.message) == (
        ErrorKind.NOT_FOUND,
        403,
        "error 403",
    )


def test_403_on_submit_is_an_account_problem() -> None:
    provider, _ = answering(httpx.Response(403, json={"code": 403, "message": "Forbidden"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.UNAVAILABLE


# -- callbacks -------------------------------------------------------------------------------------


def callback_body(name: str) -> bytes:
    return (support.EVENTS / "vidgo" / f"{name}.json").read_bytes()


def test_a_finished_callback_reads_like_a_status() -> None:
    provider, recorder = answering()
    status = provider.parse_callback(callback_body("callback_finished"), {"content-type": "application/json"})
    assert (status.task_id, status.state, status.progress) == (TASK_ID, ProviderState.SUCCEEDED, 100)
    assert status.result_urls == ("https://storage.vidgo.ai/generated/video-uyujaw3d.mp4",)
    assert recorder.requests == []


def test_a_failed_callback_carries_the_error_message() -> None:
    provider, _ = answering()
    status = provider.parse_callback(callback_body("callback_failed"), {})
    assert status.state is ProviderState.FAILED
    assert status.error_message == "Generation failed, please try again"
    assert status.result_urls == ()


def test_callbacks_are_unsigned_so_verification_has_nothing_to_check() -> None:
    provider, _ = answering()
    provider.verify_callback(callback_body("callback_finished"), {}, now=0.0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[" * 100_000 + b"]" * 100_000, "not_json"),
        (b"[1, 2]", "not_json_object"),
        (b'{"code": 200}', "missing_data"),
        (b'{"code": 200, "data": {"status": "finished"}}', "missing_task_id"),
        (b'{"code": 200, "data": {"task_id": "", "status": "finished"}}', "missing_task_id"),
        (b'{"code": 200, "data": {"task_id": "t", "files": []}}', "invalid_body"),
    ],
)
def test_unusable_callback_bodies_are_rejected(body: bytes, reason: str) -> None:
    provider, _ = answering()
    with pytest.raises(CallbackRejectedError) as caught:
        provider.parse_callback(body, {})
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("files", "urls"),
    [
        ([{"file_url": "https://s.vidgo.ai/a.mp4", "file_type": "video/mp4"}], ("https://s.vidgo.ai/a.mp4",)),
        ([{"file_url": "https://s.vidgo.ai/a.MP4?sig=1"}], ("https://s.vidgo.ai/a.MP4?sig=1",)),
        ([{"file_url": "https://s.vidgo.ai/a.mov", "file_type": ""}], ("https://s.vidgo.ai/a.mov",)),
        ([{"file_url": "https://s.vidgo.ai/a.mp4", "file_type": "image"}], ()),
        ([{"file_url": "https://s.vidgo.ai/a.bin"}], ()),
    ],
)
def test_a_file_whose_type_or_extension_says_video_is_the_result(
    files: list[dict[str, str]], urls: tuple[str, ...]
) -> None:
    body = event("status_finished")
    body["data"]["files"] = files
    provider, _ = answering(ok(body))
    status = provider.status(TASK_ID)
    assert status.result_urls == urls
    assert (status.unrecognized is None) is bool(urls)
