"""Pixwith adapter: Api-Key auth, the options object, code envelopes, integer statuses and the price table."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.models.request import JobRequest
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.pixwith import PixwithProvider, message_kind
from tests.unit.providers import support
from tests.unit.providers.support import sent_json

API_KEY = "key_00000000000000000000000000000000"
CREATE_URL = "https://api.pixwith.ai/api/task/create"
STATUS_URL = "https://api.pixwith.ai/api/task/get"
TASK_ID = "d425ab4dc256f0ebaa84862b9cea8a3d"
FIRST_FRAME = "https://cdn.pixwith.ai/uploads/first.jpg"


def event(name: str) -> dict[str, Any]:
    return support.event("pixwith", name)


def provider_answering(answer: support.Answer) -> tuple[PixwithProvider, list[httpx.Request]]:
    provider, recorder = support.build(PixwithProvider, API_KEY, answer)
    assert isinstance(provider, PixwithProvider)
    return provider, recorder.requests


def with_data(name: str, **fields: Any) -> dict[str, Any]:
    answer = event(name)
    answer["data"] = answer["data"] | fields
    return answer


# -- capabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"quality": "pro"}, "quality", "single quality tier"),
        ({"first_frame_url": FIRST_FRAME, "last_frame_url": FIRST_FRAME}, "last_frame_url", "does not support a last"),
        ({"first_frame_url": FIRST_FRAME, "aspect_ratio": "16:9"}, "aspect_ratio", "from the first frame"),
        ({"negative_prompt": "blur"}, "negative_prompt", "does not support a negative prompt"),
        ({"cfg_scale": 0.5}, "cfg_scale", "does not support cfg_scale"),
        ({"watermark": True}, "watermark", "omit watermark"),
    ],
)
def test_capability_check_names_field_provider_and_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    violations = PixwithProvider.capabilities.check(JobRequest(prompt="a cat", **fields))
    assert [(v.field, v.provider) for v in violations] == [(field, "pixwith")]
    assert rule in violations[0].rule


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"num_outputs": 4, "prompt_optimization": True, "sound": True, "duration": 10, "aspect_ratio": "1:1"},
        {"first_frame_url": FIRST_FRAME, "sound": True, "num_outputs": 2},
    ],
)
def test_documented_options_are_accepted(fields: dict[str, Any]) -> None:
    assert PixwithProvider.capabilities.check(JobRequest(prompt="a cat", **fields)) == []


def test_more_than_four_outputs_is_refused() -> None:
    # JobRequest itself stops at 4, so the provider rule is exercised on an unvalidated request.
    violations = PixwithProvider.capabilities.check(JobRequest.model_construct(prompt="p", num_outputs=5))
    assert [(v.field, v.provider, v.rule) for v in violations] == [
        ("num_outputs", "pixwith", "makes at most 4 output(s) per job")
    ]


# -- submit -----------------------------------------------------------------------------------


def test_text_to_video_submit_has_the_documented_shape_and_api_key_header() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    result = provider.submit(JobRequest(prompt="A cat playing with a ball"), "https://relay.example.com/cb")

    assert result.task_id == TASK_ID
    assert result.estimated_seconds == 150
    (request,) = sent
    assert request.method == "POST"
    assert str(request.url) == CREATE_URL
    assert request.headers["Api-Key"] == API_KEY
    assert "Authorization" not in request.headers
    assert request.headers["Content-Type"] == "application/json"
    body = sent_json(request)
    assert body == {
        "prompt": "A cat playing with a ball",
        "model_id": "2-33",
        "options": {
            "prompt_optimization": False,
            "num_outputs": 1,
            "sound": False,
            "duration": 5,
            "aspect_ratio": "16:9",
        },
    }
    assert type(body["options"]["duration"]) is int
    assert type(body["options"]["num_outputs"]) is int
    assert "relay.example.com" not in request.content.decode()


def test_text_to_video_submit_carries_every_option() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))
    request = JobRequest(
        prompt="p", prompt_optimization=True, num_outputs=3, sound=True, duration=10, aspect_ratio="9:16"
    )

    provider.submit(request, None)

    assert sent_json(sent[0])["options"] == {
        "prompt_optimization": True,
        "num_outputs": 3,
        "sound": True,
        "duration": 10,
        "aspect_ratio": "9:16",
    }


def test_image_to_video_submit_sends_exactly_one_image_and_no_ratio() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("submit_accepted")))

    provider.submit(JobRequest(prompt="starts walking", first_frame_url=FIRST_FRAME, duration=10), None)

    assert sent_json(sent[0]) == {
        "prompt": "starts walking",
        "model_id": "2-33",
        "options": {"prompt_optimization": False, "num_outputs": 1, "sound": False, "duration": 10},
        "image_urls": [FIRST_FRAME],
    }


@pytest.mark.parametrize(("estimate", "seconds"), [(12.6, 13), (0, 0), ("soon", None), (-5, None), (None, None)])
def test_estimated_time_is_read_leniently(estimate: Any, seconds: int | None) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=with_data("submit_accepted", estimated_time=estimate)))
    result = provider.submit(JobRequest(prompt="p"), None)
    assert result.task_id == TASK_ID
    assert result.estimated_seconds == seconds


@pytest.mark.parametrize("estimate", ["Infinity", "NaN"])
def test_non_finite_estimated_time_is_dropped(estimate: str) -> None:
    content = f'{{"code": 1, "message": "success", "data": {{"task_id": "{TASK_ID}", "estimated_time": {estimate}}}}}'
    provider, _ = provider_answering(httpx.Response(200, content=content.encode()))
    result = provider.submit(JobRequest(prompt="p"), None)
    assert result.task_id == TASK_ID
    assert result.estimated_seconds is None


@pytest.mark.parametrize(
    ("fixture", "kind", "message"),
    [
        ("submit_invalid_api_key", ErrorKind.UNAVAILABLE, "Invalid API KEY"),
        ("submit_credits_not_enough", ErrorKind.UNAVAILABLE, "Credits not enough"),
        ("submit_invalid_image_format", ErrorKind.REJECTED, "Invalid image format"),
        ("submit_invalid_image_url", ErrorKind.REJECTED, "Invalid image url"),
    ],
)
def test_code_zero_errors_inside_http_200_are_classified_by_message(
    fixture: str, kind: ErrorKind, message: str
) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event(fixture)))

    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)

    assert caught.value.kind is kind
    assert caught.value.message == message
    assert caught.value.provider_code == "0"
    assert caught.value.http_status == 200


def test_code_two_is_an_authentication_failure_and_msg_is_read() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("auth_failed_msg")))

    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)

    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message == "Authentication failed"
    assert caught.value.provider_code == "2"


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        ({"code": 0, "message": "  invalid api key. "}, ErrorKind.UNAVAILABLE, "  invalid api key. "),
        ({"code": 0, "msg": "Credits not enough"}, ErrorKind.UNAVAILABLE, "Credits not enough"),
        ({"code": 0, "message": "Prompt contains sensitive words"}, ErrorKind.UNRECOGNIZED, "Prompt contains"),
        ({"code": 0}, ErrorKind.UNRECOGNIZED, "error code 0"),
        ({"code": 5, "message": "Something else"}, ErrorKind.UNRECOGNIZED, "Something else"),
    ],
)
def test_envelope_error_variants(answer: dict[str, Any], kind: ErrorKind, message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is kind
    assert caught.value.message.startswith(message)
    assert caught.value.provider_code == str(answer["code"])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"message": "success", "data": {"task_id": TASK_ID}}, "no code"),
        ({"code": 1, "message": "success", "data": None}, "no data"),
        ({"code": 1, "data": {"estimated_time": 150}}, "task_id"),
        ({"code": 1, "data": {"task_id": ""}}, "task_id"),
        ({"code": "one", "data": {"task_id": TASK_ID}}, "code"),
    ],
)
def test_create_answer_without_a_usable_task_id_is_malformed(answer: dict[str, Any], message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=answer))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert "unexpected answer" in caught.value.message
    assert message in caught.value.message
    # A success answer we cannot read may stand for a task Pixwith created.
    assert caught.value.maybe_accepted


@pytest.mark.parametrize("message", ["Too many requests", "Internal server error", "Service under maintenance"])
def test_transient_refusals_inside_http_200_created_nothing(message: str) -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"code": 0, "message": message}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert not caught.value.maybe_accepted


# -- status -----------------------------------------------------------------------------------


def test_status_request_is_a_post_with_the_task_id_body() -> None:
    provider, sent = provider_answering(httpx.Response(200, json=event("status_processing")))

    provider.status(TASK_ID)

    (request,) = sent
    assert request.method == "POST"
    assert str(request.url) == STATUS_URL
    assert request.headers["Api-Key"] == API_KEY
    assert "Authorization" not in request.headers
    assert sent_json(request) == {"task_id": TASK_ID}


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        (1, ProviderState.RUNNING),
        (2, ProviderState.SUCCEEDED),
        (3, ProviderState.FAILED),
        ("2", ProviderState.SUCCEEDED),
        (0, ProviderState.UNKNOWN),
        (7, ProviderState.UNKNOWN),
        ("queued", ProviderState.UNKNOWN),
    ],
)
def test_every_status_value_is_normalized(raw: int | str, state: ProviderState) -> None:
    provider, _ = provider_answering(httpx.Response(200, json=with_data("status_processing", status=raw)))

    status = provider.status(TASK_ID)

    assert status.state is state
    assert status.raw_status == str(raw)
    assert status.task_id == TASK_ID


def test_completed_task_gives_every_result_url() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_completed")))

    status = provider.status(TASK_ID)

    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == tuple(event("status_completed")["data"]["result_urls"])
    assert status.progress is None
    assert status.credits_used is None


def test_failed_task_has_no_results() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("status_failed")))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.FAILED
    assert status.raw_status == "3"
    assert status.result_urls == ()


@pytest.mark.parametrize(
    "data",
    [{"task_id": TASK_ID}, {"task_id": TASK_ID, "status": None}, {"task_id": TASK_ID, "status": 2, "result_urls": "x"}],
)
def test_status_answer_without_a_readable_status_is_malformed(data: dict[str, Any]) -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"code": 1, "data": data}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.RETRYABLE


def test_envelope_error_on_status_is_classified() -> None:
    provider, _ = provider_answering(httpx.Response(200, json=event("submit_invalid_api_key")))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.UNAVAILABLE


# -- HTTP and transport errors (Pixwith documents none; the shared classification applies) -----


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ErrorKind.REJECTED),
        (401, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
        (502, ErrorKind.RETRYABLE),
    ],
)
def test_http_errors_are_classified(code: int, kind: ErrorKind) -> None:
    provider, _ = provider_answering(httpx.Response(code, json={"code": 0, "message": f"HTTP failure {code}"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is kind
    assert caught.value.http_status == code
    assert caught.value.provider_code == str(code)
    assert caught.value.message == f"HTTP failure {code}"


# -- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "sound", "credits"),
    [(5, False, 45), (5, True, 90), (10, False, 90), (10, True, 180)],
)
def test_cost_follows_the_price_table(duration: int, sound: bool, credits: int) -> None:
    provider, _ = provider_answering(httpx.Response(200))

    cost = provider.estimate_cost(JobRequest(prompt="p", duration=duration, sound=sound))

    assert cost is not None
    assert cost.amount == credits
    assert cost.unit == "provider_credits"
    assert cost.estimated


def test_cost_is_per_request_and_says_the_output_count_is_unconfirmed() -> None:
    provider, _ = provider_answering(httpx.Response(200))

    cost = provider.estimate_cost(JobRequest(prompt="p", num_outputs=4))

    assert cost is not None
    assert cost.amount == 45
    assert "num_outputs" in cost.basis
    assert "not stated" in cost.basis
    assert "estimate" in cost.basis


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Too many requests", ErrorKind.RETRYABLE),
        ("Internal server error", ErrorKind.RETRYABLE),
        ("Service is under maintenance, try again later", ErrorKind.RETRYABLE),
        ("Task not found", ErrorKind.NOT_FOUND),
        ("Invalid API KEY", ErrorKind.UNAVAILABLE),
        ("Invalid image url", ErrorKind.REJECTED),
        ("Prompt violates the content policy", ErrorKind.UNRECOGNIZED),
    ],
)
def test_code_zero_messages_are_classified_by_meaning(message: str, kind: ErrorKind) -> None:
    assert message_kind(message) is kind


# -- refusals we do not know --------------------------------------------------------------------


def test_an_unknown_refusal_on_submit_fails_over_and_keeps_the_answer() -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"code": 0, "message": "Model is warming up"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    error = caught.value
    assert (error.kind, error.failover, error.maybe_accepted, error.unrecognized) == (
        ErrorKind.UNRECOGNIZED,
        True,
        False,
        True,
    )
    assert error.answer == '{"code":0,"message":"Model is warming up"}'


def test_an_unknown_refusal_on_a_status_check_is_unrecognized_not_a_failed_task() -> None:
    provider, _ = provider_answering(httpx.Response(200, json={"code": 0, "message": "Queue is being rebalanced"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.UNRECOGNIZED
    assert caught.value.unrecognized
    assert caught.value.kind is not ErrorKind.REJECTED


def test_the_known_refusals_keep_their_meaning() -> None:
    for fixture, kind in (
        ("submit_invalid_image_url", ErrorKind.REJECTED),
        ("submit_invalid_api_key", ErrorKind.UNAVAILABLE),
    ):
        provider, _ = provider_answering(httpx.Response(200, json=event(fixture)))
        with pytest.raises(ProviderError) as caught:
            provider.submit(JobRequest(prompt="p"), None)
        assert (caught.value.kind, caught.value.unrecognized) == (kind, False)
