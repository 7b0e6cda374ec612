"""The Kie.ai adapter against its documented Market jobs API, through the real submit()/status() paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.errors import CallbackRejectedError
from shared.models.request import JobRequest
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.kie import KieProvider
from shared.providers.kie_signature import sign_kie_callback
from tests.unit.providers import support
from tests.unit.providers.support import Recorder, ok

API_KEY = "kie-test-key"
HMAC_KEY = "kie-webhook-hmac-key"
TASK_ID = "281e5b0a4c7d4f1e9b3a6c2d8e0f39b9"
RESULT_URL = "https://tempfile.aiquickdraw.com/kie/281e5b0a4c7d4f1e9b3a6c2d8e0f39b9.mp4"
CALLBACK = "https://api.example.com/v1/callbacks/kie/job_01jd0000000000000000000000?token=t0k"
IMAGE = "https://img.example.com/first.png"
NOW = 1_757_584_210


def event(name: str) -> dict[str, Any]:
    return support.event("kie", name)


def answering(*answers: httpx.Response | Exception, **options: Any) -> tuple[KieProvider, Recorder]:
    provider, recorder = support.build(KieProvider, API_KEY, *answers, **options)
    assert isinstance(provider, KieProvider)
    return provider, recorder


def record(name: str, **data: Any) -> dict[str, Any]:
    body = event(name)
    body["data"].update(data)
    return body


# -- capabilities and construction -----------------------------------------------------------------


def test_plain_text_and_image_requests_are_supported() -> None:
    check = KieProvider.capabilities.check
    assert check(JobRequest(prompt="p" * 1000, duration=10, sound=True, aspect_ratio="1:1")) == []
    assert check(JobRequest(prompt="p", first_frame_url=IMAGE, sound=True)) == []
    assert KieProvider.capabilities.callbacks
    assert KieProvider.capabilities.signed_callbacks


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"prompt": "p" * 1001}, "prompt", "at most 1000 characters (got 1001)"),
        ({"quality": "std"}, "quality", "single quality tier"),
        ({"first_frame_url": IMAGE, "last_frame_url": IMAGE}, "last_frame_url", "does not support a last frame"),
        ({"negative_prompt": "blur"}, "negative_prompt", "does not support a negative prompt"),
        ({"cfg_scale": 0.5}, "cfg_scale", "does not support cfg_scale"),
        ({"num_outputs": 4}, "num_outputs", "at most 1 output"),
        ({"prompt_optimization": True}, "prompt_optimization", "does not offer prompt optimization"),
        ({"watermark": True}, "watermark", "does not let the watermark be chosen"),
        ({"first_frame_url": IMAGE, "aspect_ratio": "16:9"}, "aspect_ratio", "takes the aspect ratio from the first"),
    ],
)
def test_each_unsupported_field_is_named_with_its_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    violations = KieProvider.capabilities.check(JobRequest(**{"prompt": "p", **fields}))
    assert [(v.field, v.provider) for v in violations] == [(field, "kie")]
    assert rule in violations[0].rule


def test_construction_needs_a_positive_signature_window() -> None:
    with pytest.raises(ValueError, match="signature_window_seconds"):
        answering(signature_window_seconds=0)


# -- price -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "sound", "credits"), [(5, False, 55), (5, True, 110), (10, False, 110), (10, True, 220)]
)
def test_cost_follows_the_price_table(duration: int, sound: bool, credits: int) -> None:
    provider, _ = answering()
    cost = provider.estimate_cost(JobRequest.model_validate({"prompt": "p", "duration": duration, "sound": sound}))
    assert cost is not None
    assert (cost.amount, cost.unit, cost.estimated) == (credits, "provider_credits", True)
    assert "third-party" in cost.basis
    assert "unconfirmed" in cost.basis


# -- submit ----------------------------------------------------------------------------------------


def test_text_to_video_submit_has_the_documented_shape() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    result = provider.submit(JobRequest(prompt="A paper boat drifting down a rainy street"), CALLBACK)

    sent = recorder.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.kie.ai/api/v1/jobs/createTask"
    assert sent.headers["Authorization"] == "Bearer kie-test-key"
    assert sent.headers["Content-Type"] == "application/json"
    body = recorder.last_json()
    assert body == {
        "model": "kling-2.6/text-to-video",
        "callBackUrl": CALLBACK,
        "input": {
            "prompt": "A paper boat drifting down a rainy street",
            "sound": False,
            "aspect_ratio": "16:9",
            "duration": "5",
        },
    }
    assert type(body["input"]["duration"]) is str
    assert type(body["input"]["sound"]) is bool
    assert result.task_id == TASK_ID


def test_text_to_video_options_are_mapped() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(JobRequest(prompt="p", duration=10, sound=True, aspect_ratio="9:16"), None)
    assert recorder.last_json() == {
        "model": "kling-2.6/text-to-video",
        "input": {"prompt": "p", "sound": True, "aspect_ratio": "9:16", "duration": "10"},
    }


def test_image_to_video_uses_its_own_model_and_no_aspect_ratio() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(JobRequest(prompt="The cat turns its head", first_frame_url=IMAGE, duration=10), CALLBACK)
    assert recorder.last_json() == {
        "model": "kling-2.6/image-to-video",
        "callBackUrl": CALLBACK,
        "input": {"prompt": "The cat turns its head", "image_urls": [IMAGE], "sound": False, "duration": "10"},
    }


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"code": 200, "msg": "success", "data": {}}, "data.taskId"),
        ({"code": 200, "msg": "success", "data": {"taskId": ""}}, "data.taskId"),
        ({"code": 200, "msg": "success", "data": {"task_id": TASK_ID}}, "data.taskId"),
        ({"code": 200, "msg": "success", "data": None}, "data.taskId"),
        ({"code": 200, "msg": "success", "data": {"taskId": "x" * 257}}, "data.taskId"),
    ],
)
def test_a_submit_answer_without_a_task_id_is_malformed(body: dict[str, Any], what: str) -> None:
    provider, _ = answering(ok(body))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert "unexpected answer" in caught.value.message
    assert what in caught.value.message


DOCUMENTED_CODES = [
    (400, ErrorKind.REJECTED),
    (401, ErrorKind.UNAVAILABLE),
    (402, ErrorKind.UNAVAILABLE),
    (404, ErrorKind.NOT_FOUND),
    (422, ErrorKind.REJECTED),
    (429, ErrorKind.RETRYABLE),
    (
        433,
        ErrorKind.UNAVAILABLE,
    ),  # a sub-key over its limit (Kie's Chinese API reference): another provider may take it
    (455, ErrorKind.RETRYABLE),
    (500, ErrorKind.RETRYABLE),
    (501, ErrorKind.REJECTED),
    (505, ErrorKind.UNAVAILABLE),
]
# On create there is no task to be unknown: a 404 means a route or model this account cannot reach, so the
# job fails over to the next provider.
SUBMIT_CODES = [(code, ErrorKind.UNAVAILABLE if code == 404 else kind) for code, kind in DOCUMENTED_CODES]


@pytest.mark.parametrize(("code", "kind"), SUBMIT_CODES)
def test_every_documented_envelope_code_on_submit_is_classified(code: int, kind: ErrorKind) -> None:
    provider, _ = answering(ok({"code": code, "msg": f"message {code}", "data": None}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    error = caught.value
    assert (error.kind, error.provider_code, error.message, error.http_status) == (
        kind,
        str(code),
        f"message {code}",
        200,
    )


@pytest.mark.parametrize(("code", "kind"), SUBMIT_CODES)
def test_every_documented_code_as_an_http_status_on_submit_is_classified(code: int, kind: ErrorKind) -> None:
    provider, _ = answering(httpx.Response(code, json={"code": code, "msg": f"message {code}"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    error = caught.value
    assert (error.kind, error.provider_code, error.message, error.http_status) == (
        kind,
        str(code),
        f"message {code}",
        code,
    )


def test_a_string_envelope_code_is_read_as_the_number() -> None:
    provider, _ = answering(ok({"code": "402", "msg": "Credits insufficient"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert (caught.value.kind, caught.value.provider_code) == (ErrorKind.UNAVAILABLE, "402")


def test_rate_limit_envelope_honours_retry_after_seconds() -> None:
    provider, _ = answering(ok({"code": 429, "msg": "Rate limit exceeded"}, **{"Retry-After": "10"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.retry_after == 10.0


# -- status ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("record_waiting", ProviderState.QUEUED),
        ("record_queuing", ProviderState.QUEUED),
        ("record_generating", ProviderState.RUNNING),
        ("record_success", ProviderState.SUCCEEDED),
        ("record_fail", ProviderState.FAILED),
    ],
)
def test_every_documented_state_is_normalized(name: str, state: ProviderState) -> None:
    provider, recorder = answering(ok(event(name)))
    status = provider.status(TASK_ID)

    sent = recorder.last
    assert sent.method == "GET"
    assert str(sent.url) == f"https://api.kie.ai/api/v1/jobs/recordInfo?taskId={TASK_ID}"
    assert sent.headers["Authorization"] == "Bearer kie-test-key"
    assert (status.task_id, status.state, status.raw_status) == (TASK_ID, state, event(name)["data"]["state"])
    assert status.progress is None
    if state is not ProviderState.SUCCEEDED:
        assert status.result_urls == ()


def test_success_reads_the_urls_from_the_json_encoded_result() -> None:
    provider, _ = answering(ok(event("record_success")))
    status = provider.status(TASK_ID)
    assert status.result_urls == (RESULT_URL,)
    assert status.error_message is None
    assert status.error_code is None
    # Kie's task-detail page: result URLs typically expire 24 hours after completion.
    assert status.result_expires_at == datetime.fromtimestamp(1_757_584_200, UTC) + timedelta(hours=24)
    assert status.unrecognized is None
    assert status.credits_used is None


def test_a_result_given_as_an_object_is_read_too() -> None:
    provider, _ = answering(ok(record("record_success", resultJson={"resultUrls": [RESULT_URL, 7, ""]})))
    assert provider.status(TASK_ID).result_urls == (RESULT_URL,)


@pytest.mark.parametrize(
    ("result_json", "problem"),
    [
        (None, "success without resultJson"),
        ("", "success without resultJson"),
        ("{not json", "resultJson is not JSON"),
        ('["https://x.example/a.mp4"]', "resultJson has no resultUrls list"),
        ('{"resultUrls": "https://x.example/a.mp4"}', "resultJson has no resultUrls list"),
        ('{"resultUrls": []}', "resultJson lists no result URL"),
    ],
)
def test_success_without_a_readable_result_is_unrecognized_not_final(result_json: str | None, problem: str) -> None:
    provider, _ = answering(ok(record("record_success", resultJson=result_json)))
    status = provider.status(TASK_ID)
    assert status.state is ProviderState.SUCCEEDED
    assert status.result_urls == ()
    assert status.error_message == problem
    assert status.unrecognized == f"finished without a recognisable video URL ({problem})"
    assert status.answer is not None
    assert TASK_ID in status.answer


def test_success_without_a_completion_time_has_no_expiry() -> None:
    provider, _ = answering(ok(record("record_success", completeTime=None)))
    assert provider.status(TASK_ID).result_expires_at is None


def test_fail_carries_the_fail_code_and_message() -> None:
    provider, _ = answering(ok(event("record_fail")))
    status = provider.status(TASK_ID)
    assert (status.error_code, status.error_message) == ("500", "Internal error, please try again later.")
    assert status.result_expires_at is None


@pytest.mark.parametrize(
    ("data", "what"),
    [
        ({"taskId": TASK_ID}, "no data.state"),
        ({"taskId": TASK_ID, "state": ["success"]}, "record unreadable"),
        ({"taskId": TASK_ID, "state": "success", "completeTime": "soon"}, "record unreadable"),
    ],
)
def test_an_unreadable_record_is_malformed(data: dict[str, Any], what: str) -> None:
    provider, _ = answering(ok({"code": 200, "msg": "success", "data": data}))
    with pytest.raises(ProviderError, match=what) as caught:
        provider.status(TASK_ID)
    assert caught.value.kind is ErrorKind.RETRYABLE


def test_a_status_answer_without_data_is_malformed() -> None:
    provider, _ = answering(ok({"code": 200, "msg": "success", "data": None}))
    with pytest.raises(ProviderError, match="no data object"):
        provider.status(TASK_ID)


@pytest.mark.parametrize("code", [422, 501])
def test_a_task_outcome_code_on_record_info_is_a_failed_task(code: int) -> None:
    body = {"code": code, "msg": "Generation failed", "data": {"taskId": TASK_ID, "failMsg": "Prompt was flagged"}}
    provider, _ = answering(ok(body))
    status = provider.status(TASK_ID)
    assert (status.task_id, status.state, status.error_code, status.error_message) == (
        TASK_ID,
        ProviderState.FAILED,
        str(code),
        "Prompt was flagged",
    )


def test_a_task_outcome_code_without_data_still_fails_the_asked_task() -> None:
    provider, _ = answering(ok({"code": 501, "msg": "Generation failed", "data": None}))
    status = provider.status(TASK_ID)
    assert (status.task_id, status.state, status.error_message) == (TASK_ID, ProviderState.FAILED, "Generation failed")


@pytest.mark.parametrize("code", [422, 501])
def test_a_task_outcome_code_as_an_http_status_is_a_failed_task(code: int) -> None:
    provider, _ = answering(httpx.Response(code, json={"code": code, "msg": "Generation failed"}))
    status = provider.status(TASK_ID)
    assert (status.task_id, status.state, status.error_code, status.error_message) == (
        TASK_ID,
        ProviderState.FAILED,
        str(code),
        "Generation failed",
    )


@pytest.mark.parametrize(("code", "kind"), [(c, k) for c, k in DOCUMENTED_CODES if c not in (422, 501)])
def test_other_documented_codes_on_record_info_are_errors(code: int, kind: ErrorKind) -> None:
    for answer in (ok({"code": code, "msg": "no"}), httpx.Response(code, json={"code": code, "msg": "no"})):
        provider, _ = answering(answer)
        with pytest.raises(ProviderError) as caught:
            provider.status(TASK_ID)
        assert (caught.value.kind, caught.value.provider_code) == (kind, str(code))


# -- callbacks -------------------------------------------------------------------------------------


def callback_body(name: str) -> bytes:
    return (support.EVENTS / "kie" / f"{name}.json").read_bytes()


def test_a_success_callback_reads_like_a_status() -> None:
    provider, recorder = answering()
    status = provider.parse_callback(callback_body("callback_success"), {})
    assert (status.task_id, status.state, status.result_urls) == (TASK_ID, ProviderState.SUCCEEDED, (RESULT_URL,))
    assert recorder.requests == []


def test_a_fail_callback_carries_the_reason() -> None:
    provider, _ = answering()
    status = provider.parse_callback(callback_body("callback_fail"), {})
    assert (status.state, status.error_code, status.error_message) == (
        ProviderState.FAILED,
        "500",
        "Internal error, please try again later.",
    )


@pytest.mark.parametrize("name", ["callback_snake_task_id", "callback_top_level_task_id"])
def test_the_task_id_is_also_found_at_the_other_documented_places(name: str) -> None:
    provider, _ = answering()
    status = provider.parse_callback(callback_body(name), {})
    assert (status.task_id, status.state, status.result_urls) == (TASK_ID, ProviderState.SUCCEEDED, (RESULT_URL,))


def test_data_task_id_wins_over_the_other_places() -> None:
    body = {"taskId": "top", "data": {"taskId": "camel", "task_id": "snake", "state": "generating"}}
    provider, _ = answering()
    assert provider.parse_callback(json.dumps(body).encode(), {}).task_id == "camel"


def test_a_callback_failing_by_code_alone_is_a_failed_task() -> None:
    body = {"code": 501, "msg": "Generation failed", "data": {"taskId": TASK_ID}}
    provider, _ = answering()
    status = provider.parse_callback(json.dumps(body).encode(), {})
    assert (status.state, status.error_code, status.error_message) == (ProviderState.FAILED, "501", "Generation failed")


def test_a_callback_without_a_state_is_only_a_hint() -> None:
    provider, _ = answering()
    status = provider.parse_callback(json.dumps({"code": 200, "data": {"taskId": TASK_ID}}).encode(), {})
    assert status.state is ProviderState.UNKNOWN


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not_json"),
        (b"state=success", "not_json"),
        (b'"281e5b0a"', "not_json_object"),
        (b'{"code": 200, "data": {"state": "success"}}', "missing_task_id"),
        (b'{"code": 200, "data": {"taskId": 42, "state": "success"}}', "missing_task_id"),
        (b'{"code": 200, "data": {"taskId": "t", "state": {"x": 1}}}', "invalid_body"),
    ],
)
def test_unusable_callback_bodies_are_rejected(body: bytes, reason: str) -> None:
    provider, _ = answering()
    with pytest.raises(CallbackRejectedError) as caught:
        provider.parse_callback(body, {})
    assert caught.value.reason == reason


# -- callback signatures ---------------------------------------------------------------------------


def signed_headers(task_id: str = TASK_ID, *, key: str = HMAC_KEY, at: int = NOW) -> dict[str, str]:
    return {"X-Webhook-Timestamp": str(at), "X-Webhook-Signature": sign_kie_callback(key, task_id, at)}


def signing_provider(**options: Any) -> KieProvider:
    provider, _ = answering(webhook_hmac_key=HMAC_KEY, **options)
    return provider


def verification_failure(body: bytes, headers: dict[str, str], *, now: float = NOW, **options: Any) -> str:
    with pytest.raises(CallbackRejectedError) as caught:
        signing_provider(**options).verify_callback(body, headers, now=now)
    return caught.value.reason


def test_without_a_configured_key_verification_does_nothing() -> None:
    provider, _ = answering()
    provider.verify_callback(b"anything at all", {}, now=NOW)


def test_a_validly_signed_callback_passes() -> None:
    signing_provider().verify_callback(callback_body("callback_success"), signed_headers(), now=NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.lower(): value for name, value in signed_headers().items()}
    signing_provider().verify_callback(callback_body("callback_success"), headers, now=NOW)
    signing_provider().verify_callback(callback_body("callback_success"), httpx.Headers(signed_headers()), now=NOW)


@pytest.mark.parametrize("name", ["callback_snake_task_id", "callback_top_level_task_id"])
def test_the_signed_task_id_is_found_where_the_body_puts_it(name: str) -> None:
    signing_provider().verify_callback(callback_body(name), signed_headers(), now=NOW)


def test_a_signature_with_the_wrong_key_is_rejected() -> None:
    headers = signed_headers(key="someone-else")
    assert verification_failure(callback_body("callback_success"), headers) == "bad_signature"


def test_a_body_about_another_task_is_rejected() -> None:
    body = callback_body("callback_success").replace(TASK_ID.encode(), b"0" * 32)
    assert verification_failure(body, signed_headers()) == "bad_signature"


def test_stale_and_future_timestamps_are_rejected() -> None:
    body = callback_body("callback_success")
    assert verification_failure(body, signed_headers(at=NOW - 301)) == "stale_timestamp"
    assert verification_failure(body, signed_headers(at=NOW + 301)) == "future_timestamp"


def test_the_window_is_configurable() -> None:
    body = callback_body("callback_success")
    signing_provider(signature_window_seconds=600).verify_callback(body, signed_headers(at=NOW - 500), now=NOW)
    assert verification_failure(body, signed_headers(at=NOW - 61), signature_window_seconds=60) == "stale_timestamp"


def test_a_non_integer_timestamp_is_rejected() -> None:
    headers = signed_headers()
    headers["X-Webhook-Timestamp"] = f"{NOW}.0"
    assert verification_failure(callback_body("callback_success"), headers) == "bad_timestamp"


@pytest.mark.parametrize(
    ("dropped", "reason"), [("X-Webhook-Timestamp", "missing_timestamp"), ("X-Webhook-Signature", "missing_signature")]
)
def test_missing_headers_are_rejected(dropped: str, reason: str) -> None:
    headers = signed_headers()
    del headers[dropped]
    assert verification_failure(callback_body("callback_success"), headers) == reason


def test_no_headers_at_all_are_rejected() -> None:
    assert verification_failure(callback_body("callback_success"), {}) == "missing_timestamp"


def test_an_empty_configured_key_rejects_every_callback() -> None:
    provider, _ = answering(webhook_hmac_key="")
    with pytest.raises(CallbackRejectedError, match="missing_key"):
        provider.verify_callback(callback_body("callback_success"), signed_headers(key="x"), now=NOW)


def test_a_body_without_a_task_id_is_rejected() -> None:
    body = json.dumps({"code": 200, "data": {"state": "success"}}).encode()
    assert verification_failure(body, signed_headers()) == "missing_task_id"


def test_a_body_that_is_not_json_is_rejected() -> None:
    assert verification_failure(b"<xml/>", signed_headers()) == "not_json"


def test_verification_uses_the_clock_when_no_time_is_given() -> None:
    body = callback_body("callback_success")
    current = int(datetime.now(UTC).timestamp())
    signing_provider().verify_callback(body, signed_headers(at=current))
    with pytest.raises(CallbackRejectedError, match="stale_timestamp"):
        signing_provider().verify_callback(body, signed_headers(at=current - 3600))


@pytest.mark.parametrize("fail_code", ["", None])
def test_an_empty_or_null_fail_code_is_no_code(fail_code: str | None) -> None:
    provider, _ = answering(ok(record("record_fail", failCode=fail_code)))
    status = provider.status(TASK_ID)
    assert (status.state, status.error_code) == (ProviderState.FAILED, None)


# -- motion control -------------------------------------------------------------------------------

CHARACTER = "https://img.example.com/character.png"
DANCE = "https://cdn.example.com/dance.mp4"


def motion_request(**fields: Any) -> JobRequest:
    motion = {"image_url": CHARACTER, "video_url": DANCE, **fields.pop("motion", {})}
    return JobRequest.model_validate({"motion_control": motion, **fields})


@pytest.mark.parametrize(("quality", "mode"), [(None, "720p"), ("std", "720p"), ("pro", "1080p")])
def test_motion_control_has_the_documented_shape(quality: str | None, mode: str) -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(motion_request(quality=quality, motion={"character_orientation": "video"}), CALLBACK)
    assert recorder.last_json() == {
        "model": "kling-2.6/motion-control",
        "callBackUrl": CALLBACK,
        "input": {"input_urls": [CHARACTER], "video_urls": [DANCE], "character_orientation": "video", "mode": mode},
    }


def test_a_motion_prompt_may_be_as_long_as_2500_characters() -> None:
    provider, recorder = answering(ok(event("submit_ok")))
    provider.submit(motion_request(prompt="p" * 2500), None)
    assert recorder.last_json()["input"]["prompt"] == "p" * 2500


def test_kie_cannot_be_told_to_keep_or_drop_the_reference_sound() -> None:
    violations = KieProvider.capabilities.check(motion_request(motion={"keep_original_sound": True}))
    assert [(v.field, v.provider) for v in violations] == [("motion_control.keep_original_sound", "kie")]


@pytest.mark.parametrize(
    ("quality", "seconds", "orientation", "credits", "says"),
    [
        (None, 4.2, "image", 5 * 11, "5 s (the reference video's length)"),
        ("pro", 3.0, "image", 3 * 18, "3 s"),
        (None, None, "image", 10 * 11, "at most 10 s"),
        ("pro", None, "video", 30 * 18, "at most 30 s"),
    ],
)
def test_motion_control_costs_per_second_of_the_reference(
    quality: str | None, seconds: float | None, orientation: str, credits: int, says: str
) -> None:
    provider, _ = answering()
    request = motion_request(quality=quality, motion={"video_seconds": seconds, "character_orientation": orientation})
    cost = provider.estimate_cost(request)
    assert cost is not None
    assert (cost.amount, cost.estimated) == (credits, True)
    assert says in cost.basis
    assert "unconfirmed" in cost.basis
