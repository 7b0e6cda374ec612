"""AI/ML API adapter: capabilities, exact request shapes, answers, statuses and error classification."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.models.request import JobRequest
from shared.providers.aimlapi import AimlapiProvider
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from tests.unit.providers import support
from tests.unit.providers.support import sent_json

API_KEY = "aiml-test-key"
GENERATIONS_URL = "https://api.aimlapi.com/v2/video/generations"
TASK_ID = "bfb9eca8-178f-41ca-a1f1-6e4551157a0b:klingai/video-v2-6-pro-text-to-video"
FIRST_FRAME = "https://img.example.com/first.png"


def event(name: str) -> dict[str, Any]:
    return support.event("aimlapi", name)


def provider_answering(answer: support.Answer) -> tuple[AimlapiProvider, list[httpx.Request]]:
    provider, recorder = support.build(AimlapiProvider, API_KEY, answer)
    assert isinstance(provider, AimlapiProvider)
    return provider, recorder.requests


# -- capabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"quality": "std"}, "quality", "offers quality ['pro']"),
        ({"first_frame_url": FIRST_FRAME, "last_frame_url": FIRST_FRAME}, "last_frame_url", "does not support a last"),
        ({"first_frame_url": FIRST_FRAME, "aspect_ratio": "1:1"}, "aspect_ratio", "from the first frame"),
        ({"first_frame_url": FIRST_FRAME, "cfg_scale": 0.5}, "cfg_scale", "text-to-video only"),
        ({"num_outputs": 2}, "num_outputs", "at most 1 output"),
        ({"prompt_optimization": True}, "prompt_optimization", "does not offer prompt optimization"),
        ({"watermark": False}, "watermark", "omit watermark"),
    ],
)
def test_capability_check_names_field_provider_and_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    violations = AimlapiProvider.capabilities.check(JobRequest(prompt="a fox", **fields))
    assert [(v.field, v.provider) for v in violations] == [(field, "aimlapi")]
    assert rule in violations[0].rule


def test_prompt_longer_than_2500_characters_is_refused() -> None:
    # JobRequest itself stops at 2500, so the provider rule is exercised on an unvalidated request.
    too_long = JobRequest.model_construct(prompt="x" * 2501)
    violations = AimlapiProvider.capabilities.check(too_long)
    assert [(v.field, v.provider) for v in violations] == [("prompt", "aimlapi")]
    assert "at most 2500 characters" in violations[0].rule
    assert AimlapiProvider.capabilities.check(JobRequest(prompt="x" * 2500)) == []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"quality": "pro", "sound": True, "duration": 10, "aspect_ratio": "9:16"},
        {"negative_prompt": "blur", "cfg_scale": 0.0},
        {"first_frame_url": FIRST_FRAME, "sound": True, "negative_prompt": "blur"},
    ],
)
def test_documented_options_are_accepted(fields: dict[str, Any]) -> None:
    assert AimlapiProvider.capabilities.check(JobRequest(prompt="a fox", **fields)) == []


def test_only_the_pro_tier_is_offered_and_it_is_the_default() -> None:
    capabilities = AimlapiProvider.capabilities
    assert capabilities.qualities == ("pro",)
    assert capabilities.quality_for(JobRequest(prompt="p")) == "pro"
    assert not capabilities.callbacks


# -- submit -----------------------------------------------------------------------------------


def test_text_to_video_submit_has_the_documented_flat_shape() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    result = provider.submit(JobRequest(prompt="A raccoon in a sequoia forest"), "https://relay.example.com/cb")

    assert result.task_id == TASK_ID
    assert result.raw_status == "queued"
    (request,) = sent
    assert request.method == "POST"
    assert str(request.url) == GENERATIONS_URL
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body = sent_json(request)
    assert body == {
        "model": "klingai/video-v2-6-pro-text-to-video",
        "prompt": "A raccoon in a sequoia forest",
        "duration": 5,
        "aspect_ratio": "16:9",
        "generate_audio": False,
    }
    assert type(body["duration"]) is int
    assert body["generate_audio"] is False


def test_text_to_video_submit_carries_every_option() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    request = JobRequest(
        prompt="p",
        negative_prompt="blurry, watermark",
        duration=10,
        aspect_ratio="9:16",
        sound=True,
        quality="pro",
        cfg_scale=0.4,
    )

    provider.submit(request, None)

    assert sent_json(sent[0]) == {
        "model": "klingai/video-v2-6-pro-text-to-video",
        "prompt": "p",
        "duration": 10,
        "aspect_ratio": "9:16",
        "cfg_scale": 0.4,
        "negative_prompt": "blurry, watermark",
        "generate_audio": True,
    }


def test_image_to_video_submit_sends_the_first_frame_and_no_ratio_or_cfg() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    provider.submit(JobRequest(prompt="walks forward", first_frame_url=FIRST_FRAME, negative_prompt="n"), None)

    body = sent_json(sent[0])
    assert body == {
        "model": "klingai/video-v2-6-pro-image-to-video",
        "prompt": "walks forward",
        "duration": 5,
        "image_url": FIRST_FRAME,
        "negative_prompt": "n",
        "generate_audio": False,
    }
    assert isinstance(body["image_url"], str)


def test_callback_url_is_not_sent_because_there_are_no_callbacks() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    provider.submit(JobRequest(prompt="p"), "https://relay.example.com/callbacks/aimlapi/tok")
    assert "relay.example.com" not in sent[0].content.decode()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": "queued"}, "no generation id"),
        ({"id": "", "status": "queued"}, "id:"),
        ({"id": 42, "status": "queued"}, "id:"),
        ([{"id": "x"}], "not a JSON object"),
    ],
)
def test_create_answer_without_a_usable_id_is_malformed(answer: Any, message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert message in caught.value.message


def test_error_body_inside_a_2xx_answer_is_classified_by_its_status_code() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("error_403")))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.provider_code == "403"
    assert "not enough credits" in caught.value.message


def test_create_answer_with_only_an_error_object_is_a_refusal() -> None:
    answer = {"status": "error", "error": {"name": "ValidationError", "message": "image_url is required"}}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.REJECTED
    assert caught.value.provider_code == "ValidationError"
    assert caught.value.message == "image_url is required"


# -- status -----------------------------------------------------------------------------------


def test_status_request_is_a_get_with_the_generation_id_query() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("status_generating")))

    provider.status(TASK_ID)

    (request,) = sent
    assert request.method == "GET"
    assert request.url.copy_with(query=None) == httpx.URL(GENERATIONS_URL)
    assert request.url.params["generation_id"] == TASK_ID
    assert list(request.url.params.keys()) == ["generation_id"]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.content == b""


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("queued", ProviderState.QUEUED),
        ("waiting", ProviderState.QUEUED),
        ("generating", ProviderState.RUNNING),
        ("active", ProviderState.RUNNING),
        ("completed", ProviderState.SUCCEEDED),
        ("succeeded", ProviderState.SUCCEEDED),
        ("error", ProviderState.FAILED),
        ("COMPLETED", ProviderState.SUCCEEDED),
        ("rendering", ProviderState.UNKNOWN),
    ],
)
def test_every_status_value_is_normalized(raw: str, state: ProviderState) -> None:
    answer = event("status_generating") | {"status": raw}
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(TASK_ID)

    assert status.state is state
    assert status.raw_status == raw
    assert status.task_id == TASK_ID


def test_completed_generation_gives_video_url_and_credits_used() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_completed")))

    status = provider.status(TASK_ID)

    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == ("https://cdn.aimlapi.com/flamingo/files/b/0a84eb06/XtWjnJNjQLBMwJbBz4WcF_output.mp4",)
    assert status.credits_used == 120000
    assert status.error_message is None
    assert status.progress is None


def test_succeeded_generation_falls_back_to_the_data_array() -> None:
    answer = event("status_succeeded_data")
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(answer["id"])

    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == ("https://cdn.aimlapi.com/flamingo/files/b/0a84ec11/Qm8v2kLr0tUuYwZ_output.mp4",)
    assert status.credits_used is None


def test_video_url_wins_over_the_data_array() -> None:
    answer = event("status_completed") | {"data": [{"url": "https://cdn.aimlapi.com/other.mp4"}]}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    assert provider.status(TASK_ID).result_urls == (answer["video"]["url"],)


def test_failed_generation_carries_error_name_and_message() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_error")))

    status = provider.status(TASK_ID)

    assert status.state is ProviderState.FAILED
    assert status.error_code == "GenerationError"
    assert status.error_message == "The prompt was rejected by the content filter"
    assert status.result_urls == ()
    assert status.credits_used == 0


def test_side_fields_in_an_unknown_shape_do_not_lose_the_answer() -> None:
    answer = event("status_completed") | {"meta": ["unexpected"], "error": 17}
    provider, _ = provider_answering(httpx.Response(200, json=answer))

    status = provider.status(TASK_ID)

    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == (answer["video"]["url"],)
    assert status.credits_used is None
    assert status.error_message is None


@pytest.mark.parametrize("credits_used", ["Infinity", "NaN", "-5"])
def test_unusable_credits_used_is_dropped(credits_used: str) -> None:
    content = f'{{"id": "{TASK_ID}", "status": "completed", "meta": {{"usage": {{"credits_used": {credits_used}}}}}}}'
    provider, _ = provider_answering(httpx.Response(200, content=content.encode()))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.SUCCEEDED
    assert status.credits_used is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"id": TASK_ID}, "no status"),
        ({"id": TASK_ID, "status": 3}, "status:"),
        ({"id": TASK_ID, "status": "completed", "video": "https://x"}, "video:"),
    ],
)
def test_status_answer_without_a_readable_status_is_malformed(answer: dict[str, Any], message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert message in caught.value.message


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ErrorKind.REJECTED),
        (401, ErrorKind.UNAVAILABLE),
        (403, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
    ],
)
def test_documented_http_errors_are_classified(code: int, kind: ErrorKind) -> None:
    body = event(f"error_{code}")
    provider, _ = provider_answering(httpx.Response(code, json=body))

    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)

    assert caught.value.kind is kind
    assert caught.value.http_status == code
    assert caught.value.provider_code == str(code)
    assert caught.value.message == body["message"]
    assert caught.value.provider == "aimlapi"


# -- callbacks and cost -----------------------------------------------------------------------


def test_no_price_is_published() -> None:
    provider, _ = provider_answering(httpx.Response(200))
    assert provider.estimate_cost(JobRequest(prompt="p")) is None


# -- statuses outside the documented vocabulary ---------------------------------------------------


def test_an_undocumented_status_with_a_video_is_the_end_of_a_successful_generation() -> None:
    answer = event("status_completed") | {"status": "finished"}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    status = provider.status(TASK_ID)
    assert (status.state, status.raw_status, status.unrecognized) == (ProviderState.SUCCEEDED, "finished", None)
    assert status.result_urls == (answer["video"]["url"],)


def test_an_undocumented_status_with_an_error_is_a_failed_generation() -> None:
    answer = event("status_error") | {"status": "failed"}
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    status = provider.status(TASK_ID)
    assert (status.state, status.error_code, status.unrecognized) == (ProviderState.FAILED, "GenerationError", None)


def test_an_undocumented_status_saying_nothing_else_is_unrecognized() -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"id": TASK_ID, "status": "paused", "video": None}))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.UNKNOWN
    assert status.unrecognized == "unknown status 'paused'"


def test_completed_without_any_video_url_is_unrecognized_not_final() -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"id": TASK_ID, "status": "completed", "video": None}))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.SUCCEEDED
    assert status.unrecognized == "finished without a recognisable video URL"


# -- motion control -------------------------------------------------------------------------------

MOTION = {"image_url": "https://img.example.com/c.png", "video_url": "https://cdn.example.com/d.mp4"}


@pytest.mark.parametrize(("sound", "sent"), [(None, {}), (True, {"keep_audio": True}), (False, {"keep_audio": False})])
def test_motion_control_has_the_documented_flat_shape(sound: bool | None, sent: dict[str, Any]) -> None:
    provider, requests = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    request = JobRequest.model_validate(
        {"prompt": "dances", "motion_control": {**MOTION, "keep_original_sound": sound}}
    )
    provider.submit(request, None)
    assert sent_json(requests[0]) == {
        "model": "klingai/video-v2-6-pro-motion-control",
        "prompt": "dances",
        "image_url": MOTION["image_url"],
        "video_url": MOTION["video_url"],
        "character_orientation": "image",
        **sent,
    }


def test_motion_control_is_pro_only_and_priced_by_what_the_provider_reports() -> None:
    request = JobRequest.model_validate({"motion_control": MOTION, "quality": "std"})
    assert [v.field for v in AimlapiProvider.capabilities.check(request)] == ["quality"]
    provider, _ = provider_answering(httpx.Response(200))
    assert provider.estimate_cost(JobRequest.model_validate({"motion_control": MOTION})) is None
