"""APIMart-style adapter: std/pro rules, flat body, array submit answer, task statuses and result links.

APIMart documents no error codes or error bodies: `envelope_error.json` and `http_error.json` are assumed
shapes (a `{code, message}` envelope and an `{error: {code, message}}` body) used to pin the classification.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.models.request import JobRequest
from shared.providers.apimart import ApimartProvider
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.settings import DEFAULT_BASE_URLS
from tests.unit.providers import support
from tests.unit.providers.support import sent_json

API_KEY = "sk-apimart-test"
CREATE_URL = "https://api.apimart.ai/v1/videos/generations"
TASK_ID = "task_01K8SGYNNNVBQTXNR4MM964S7K"
FIRST_FRAME = "https://img.example.com/first.jpg"
LAST_FRAME = "https://img.example.com/last.jpg"


def event(name: str) -> dict[str, Any]:
    return support.event("apimart", name)


def provider_answering(
    answer: support.Answer, base_url: str = DEFAULT_BASE_URLS["apimart"]
) -> tuple[ApimartProvider, list[httpx.Request]]:
    provider, recorder = support.build(ApimartProvider, API_KEY, answer, base_url=base_url)
    assert isinstance(provider, ApimartProvider)
    return provider, recorder.requests


def with_data(name: str, **fields: Any) -> dict[str, Any]:
    answer = event(name)
    answer["data"] = answer["data"] | fields
    return answer


# -- capabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"sound": True}, "sound", "only with quality=pro"),
        ({"sound": True, "quality": "std"}, "sound", "only with quality=pro"),
        ({"first_frame_url": FIRST_FRAME, "last_frame_url": LAST_FRAME}, "last_frame_url", "only with quality=pro"),
        (
            {"first_frame_url": FIRST_FRAME, "last_frame_url": LAST_FRAME, "quality": "pro", "sound": True},
            "last_frame_url",
            "cannot combine a last frame with sound",
        ),
        ({"cfg_scale": 0.5}, "cfg_scale", "does not support cfg_scale"),
        ({"num_outputs": 2}, "num_outputs", "at most 1 output"),
        ({"prompt_optimization": True}, "prompt_optimization", "does not offer prompt optimization"),
    ],
)
def test_capability_check_names_field_provider_and_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    violations = ApimartProvider.capabilities.check(JobRequest(prompt="a golden cat", **fields))
    assert [(v.field, v.provider) for v in violations] == [(field, "apimart")]
    assert rule in violations[0].rule


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"quality": "std", "duration": 10, "aspect_ratio": "1:1", "negative_prompt": "blur", "watermark": False},
        {"quality": "pro", "sound": True},
        {"first_frame_url": FIRST_FRAME, "aspect_ratio": "9:16"},
        {"first_frame_url": FIRST_FRAME, "last_frame_url": LAST_FRAME, "quality": "pro"},
        {"first_frame_url": FIRST_FRAME, "quality": "pro", "sound": True, "watermark": True},
    ],
)
def test_documented_options_are_accepted(fields: dict[str, Any]) -> None:
    assert ApimartProvider.capabilities.check(JobRequest(prompt="a golden cat", **fields)) == []


def test_prompt_longer_than_2500_characters_is_refused() -> None:
    violations = ApimartProvider.capabilities.check(JobRequest.model_construct(prompt="x" * 2501))
    assert [(v.field, v.provider) for v in violations] == [("prompt", "apimart")]


# -- submit -----------------------------------------------------------------------------------


def test_text_to_video_submit_has_the_documented_flat_shape() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    result = provider.submit(JobRequest(prompt="A golden cat on a meadow"), "https://relay.example.com/cb")

    assert result.task_id == TASK_ID
    assert result.raw_status == "submitted"
    (request,) = sent
    assert request.method == "POST"
    assert str(request.url) == CREATE_URL
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body = sent_json(request)
    assert body == {
        "model": "kling-v2-6",
        "prompt": "A golden cat on a meadow",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    assert type(body["duration"]) is int
    assert "relay.example.com" not in request.content.decode()


def test_pro_text_to_video_with_audio_and_every_option() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    request = JobRequest(
        prompt="p",
        quality="pro",
        sound=True,
        duration=10,
        aspect_ratio="9:16",
        negative_prompt="blurry, low quality",
        watermark=False,
    )

    provider.submit(request, None)

    assert sent_json(sent[0]) == {
        "model": "kling-v2-6",
        "prompt": "p",
        "mode": "pro",
        "duration": 10,
        "aspect_ratio": "9:16",
        "negative_prompt": "blurry, low quality",
        "audio": True,
        "watermark": False,
    }


def test_image_to_video_sends_the_first_frame_and_no_default_ratio() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    provider.submit(JobRequest(prompt="p", first_frame_url=FIRST_FRAME, watermark=True), None)

    assert sent_json(sent[0]) == {
        "model": "kling-v2-6",
        "prompt": "p",
        "mode": "std",
        "duration": 5,
        "image_urls": [FIRST_FRAME],
        "watermark": True,
    }


def test_image_to_video_keeps_an_explicit_ratio_and_sends_first_and_last_frames_in_order() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    request = JobRequest(
        prompt="p", first_frame_url=FIRST_FRAME, last_frame_url=LAST_FRAME, quality="pro", aspect_ratio="1:1"
    )

    provider.submit(request, None)

    body = sent_json(sent[0])
    assert body["image_urls"] == [FIRST_FRAME, LAST_FRAME]
    assert body["aspect_ratio"] == "1:1"
    assert body["mode"] == "pro"
    assert body["audio"] is False


def test_a_bare_data_object_is_read_like_the_documented_array() -> None:
    answer = {"code": 200, "data": {"status": "submitted", "task_id": TASK_ID}}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    assert provider.submit(JobRequest(prompt="p"), None).task_id == TASK_ID


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"code": 200, "data": []}, "no task"),
        ({"code": 200, "data": ["task_x"]}, "no task"),
        ({"code": 200, "data": [{"status": "submitted"}]}, "task_id"),
        ({"code": 200, "data": [{"task_id": ""}]}, "task_id"),
        ({"code": 200}, "no data"),
    ],
)
def test_create_answer_without_a_usable_task_id_is_malformed(answer: dict[str, Any], message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ErrorKind.REJECTED),
        (401, ErrorKind.UNAVAILABLE),
        (402, ErrorKind.UNAVAILABLE),
        (403, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.UNAVAILABLE),  # on create: a route or model this account cannot reach
        (422, ErrorKind.REJECTED),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
        ("503", ErrorKind.RETRYABLE),
        (201, ErrorKind.REJECTED),
        ("busy", ErrorKind.REJECTED),
    ],
)
def test_envelope_code_other_than_200_is_classified_like_the_http_status(code: int | str, kind: ErrorKind) -> None:
    answer = event("envelope_error") | {"code": code}
    provider, _ = provider_answering(httpx.Response(200, json=answer, headers={"Retry-After": "12"}))

    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)

    assert caught.value.kind is kind
    assert caught.value.provider_code == str(code)
    assert caught.value.message == "Invalid API key"
    assert caught.value.http_status == 200
    assert caught.value.retry_after == 12.0


def test_top_level_error_object_without_code_is_an_error() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("http_error")))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert caught.value.provider_code == "429"
    assert caught.value.message == "Rate limit exceeded, please retry later"


# -- status -----------------------------------------------------------------------------------


def test_status_request_is_a_get_on_the_task_path() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("status_processing")))

    provider.status(TASK_ID)

    (request,) = sent
    assert request.method == "GET"
    assert str(request.url) == f"https://api.apimart.ai/v1/tasks/{TASK_ID}"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.content == b""


def test_task_id_is_escaped_in_the_path_and_still_matched() -> None:
    odd_id = "task/../x y"
    provider, sent = provider_answering(httpx.Response(200, json=with_data("status_processing", id=odd_id)))

    status = provider.status(odd_id)

    assert sent[0].url.raw_path == b"/v1/tasks/task%2F..%2Fx%20y"
    assert status.task_id == odd_id


def test_a_white_label_base_path_is_kept() -> None:
    provider, sent = provider_answering(
        httpx.Response(200, json=event("status_pending")), base_url="https://gateway.example.com/api"
    )
    assert provider.status(TASK_ID).state is ProviderState.QUEUED
    assert str(sent[0].url) == f"https://gateway.example.com/api/v1/tasks/{TASK_ID}"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("submitted", ProviderState.QUEUED),
        ("pending", ProviderState.QUEUED),
        ("processing", ProviderState.RUNNING),
        ("completed", ProviderState.SUCCEEDED),
        ("failed", ProviderState.FAILED),
        ("cancelled", ProviderState.CANCELED),
        ("canceled", ProviderState.CANCELED),
        ("Processing", ProviderState.RUNNING),
        ("moderating", ProviderState.UNKNOWN),
    ],
)
def test_every_status_value_is_normalized(raw: str, state: ProviderState) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=with_data("status_pending", status=raw)))

    status = provider.status(TASK_ID)

    assert status.state is state
    assert status.raw_status == raw
    assert status.task_id == TASK_ID


def test_progress_is_read_and_clamped() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_processing")))
    assert provider.status(TASK_ID).progress == 45
    provider, _ = provider_answering(httpx.Response(200, json=with_data("status_processing", progress=140)))
    assert provider.status(TASK_ID).progress == 100
    provider, _ = provider_answering(httpx.Response(200, json=with_data("status_processing", progress="half")))
    assert provider.status(TASK_ID).progress is None


@pytest.mark.parametrize("progress", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_progress_is_dropped(progress: str) -> None:
    content = f'{{"code": 200, "data": {{"id": "{TASK_ID}", "status": "processing", "progress": {progress}}}}}'
    provider, _ = provider_answering(httpx.Response(200, content=content.encode()))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.RUNNING
    assert status.progress is None


@pytest.mark.parametrize("fixture", ["status_completed_url_list", "status_completed_url_string"])
def test_completed_task_reads_the_url_as_a_list_or_a_string(fixture: str) -> None:
    answer = event(fixture)
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(TASK_ID)

    url = answer["data"]["result"]["videos"][0]["url"]
    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == (tuple(url) if isinstance(url, list) else (url,))
    assert status.progress == 100
    assert status.result_expires_at == datetime(2025, 11, 15, 2, 45, 8, tzinfo=UTC)


def test_urls_are_collected_from_every_video_and_the_earliest_expiry_wins() -> None:
    videos = [
        {"url": ["https://cdn.example.com/a.mp4", "https://cdn.example.com/b.mp4"], "expires_at": 1763174708},
        {"url": "https://cdn.example.com/c.mp4", "expires_at": 1763100000},
        {"url": ["https://cdn.example.com/a.mp4", ""]},
        {"url": None},
    ]
    answer = with_data("status_completed_url_list", result={"videos": videos})
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(TASK_ID)

    assert status.result_urls == (
        "https://cdn.example.com/a.mp4",
        "https://cdn.example.com/b.mp4",
        "https://cdn.example.com/c.mp4",
    )
    assert status.result_expires_at == datetime.fromtimestamp(1763100000, tz=UTC)


@pytest.mark.parametrize("expires_at", ["tomorrow", -1, 10**15])
def test_an_unreadable_expiry_is_dropped_not_fatal(expires_at: Any) -> None:
    videos = [{"url": "https://cdn.example.com/a.mp4", "expires_at": expires_at}]
    answer = with_data("status_completed_url_string", result={"videos": videos})
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(TASK_ID)

    assert status.result_urls == ("https://cdn.example.com/a.mp4",)
    assert status.result_expires_at is None


def test_failed_task_carries_the_error_message_and_code() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_failed")))

    status = provider.status(TASK_ID)

    assert status.state is ProviderState.FAILED
    assert status.error_message == "Image-to-video generation failed: the first frame could not be downloaded"
    assert status.error_code == "400"
    assert status.result_urls == ()


def test_failed_task_with_a_plain_string_error() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=with_data("status_failed", error="content policy")))
    status = provider.status(TASK_ID)
    assert status.error_message == "content policy"
    assert status.error_code is None


def test_cancelled_task_is_canceled() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_cancelled")))
    assert provider.status(TASK_ID).state is ProviderState.CANCELED


@pytest.mark.parametrize(
    "data",
    [
        {"id": TASK_ID},
        {"id": TASK_ID, "status": 3},
        {"id": TASK_ID, "status": "completed", "result": {"videos": {"url": "x"}}},
        {"id": TASK_ID, "status": "completed", "result": {"videos": [{"url": 5}]}},
        ["not", "an", "object"],
    ],
)
def test_status_answer_without_a_readable_status_is_malformed(data: Any) -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"code": 200, "data": data}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert "unexpected answer" in caught.value.message


def test_envelope_error_on_status_is_classified() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("envelope_error") | {"code": 404}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.NOT_FOUND


# -- HTTP and transport errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ErrorKind.REJECTED),
        (401, ErrorKind.UNAVAILABLE),
        (402, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
        (503, ErrorKind.RETRYABLE),
    ],
)
def test_http_errors_are_classified_and_read_the_error_message(code: int, kind: ErrorKind) -> None:
    provider, _ = provider_answering(httpx.Response(code, json=event("http_error")))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is kind
    assert caught.value.http_status == code
    assert caught.value.provider_code == str(code)
    assert caught.value.message == "Rate limit exceeded, please retry later"


def test_no_price_is_known() -> None:
    provider, _ = provider_answering(httpx.Response(200))
    assert provider.estimate_cost(JobRequest(prompt="p")) is None


# -- shapes the docs show besides the video example -----------------------------------------------


def test_results_under_images_are_read_too() -> None:
    images = [{"url": ["https://cdn.example.com/i.mp4"], "expires_at": 1763174708}]
    provider, _ = provider_answering(
        httpx.Response(200, json=with_data("status_completed_url_list", result={"images": images}))
    )
    status = provider.status(TASK_ID)
    assert (status.state, status.result_urls, status.unrecognized) == (
        ProviderState.SUCCEEDED,
        ("https://cdn.example.com/i.mp4",),
        None,
    )


@pytest.mark.parametrize("empty", [{}, "", "   ", {"message": "", "code": None}])
def test_an_error_saying_nothing_is_not_an_error(empty: Any) -> None:
    answer = event("status_processing") | {"error": empty}
    answer["data"] = answer["data"] | {"error": empty}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.RUNNING
    assert (status.error_code, status.error_message) == (None, None)


@pytest.mark.parametrize("error", [{"message": "quota exceeded"}, {"code": "insufficient_quota"}, "quota exceeded"])
def test_an_error_with_a_message_or_code_is_an_error(error: Any) -> None:
    answer = event("submit_accepted") | {"error": error}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError):
        provider.submit(JobRequest(prompt="p"), None)


def test_audio_is_sent_only_in_pro_mode_where_the_docs_allow_it() -> None:
    for quality, sound, expected in (("std", False, None), ("pro", False, False), ("pro", True, True)):
        provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
        provider.submit(JobRequest(prompt="p", quality=quality, sound=sound), None)
        assert sent_json(sent[0]).get("audio") == expected, quality


# -- motion control -------------------------------------------------------------------------------

MOTION = {"image_url": "https://img.example.com/c.png", "video_url": "https://cdn.example.com/d.mp4"}


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({}, {"mode": "std"}),
        ({"quality": "pro"}, {"mode": "pro"}),
        ({"motion_control": {**MOTION, "keep_original_sound": False}}, {"mode": "std", "keep_original_sound": "no"}),
        ({"motion_control": {**MOTION, "keep_original_sound": True}}, {"mode": "std", "keep_original_sound": "yes"}),
    ],
)
def test_motion_control_has_the_documented_shape(fields: dict[str, Any], sent: dict[str, Any]) -> None:
    provider, requests = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    provider.submit(JobRequest.model_validate({"motion_control": MOTION, **fields}), None)
    assert sent_json(requests[0]) == {
        "model": "kling-v2-6-motion-control",
        "image_url": MOTION["image_url"],
        "video_url": MOTION["video_url"],
        "character_orientation": "image",
        **sent,
    }
