"""The contract every provider adapter keeps, whatever its API looks like: construction, refusing what it
cannot honour before sending, HTTP and transport failures classified alike, status answers tied to the task
asked about, unknown status values never final. Each provider's own file pins its documented shapes."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from shared.errors import CallbackRejectedError, UnsupportedRequestError
from shared.models.common import utcnow
from shared.models.request import JobRequest
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.kie import KieProvider
from shared.providers.registry import PROVIDER_CLASSES, build_provider
from shared.secrets import ProviderCredentials
from shared.settings import DEFAULT_BASE_URLS, ProviderEndpoint, Settings
from tests.unit.providers.support import CASES, ProviderCase, ok

each_provider = pytest.mark.parametrize("case", CASES, ids=str)


# -- construction ---------------------------------------------------------------------------------


@each_provider
def test_an_api_key_is_required(case: ProviderCase) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    with pytest.raises(ValueError, match="API key"):
        case.adapter(ProviderEndpoint(base_url=DEFAULT_BASE_URLS[case.name]), "", http)


@each_provider
def test_the_registry_builds_it_from_settings_and_credentials_alone(case: ProviderCase) -> None:
    settings = Settings(kie_signature_window_seconds=120)
    credentials = ProviderCredentials.model_validate({case.name: "the-key", "kie_webhook_hmac_key": "hmac"})
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))

    adapter = build_provider(case.name, settings, credentials, http)

    assert type(adapter) is PROVIDER_CLASSES[case.name] is case.adapter
    assert (adapter.api_key, adapter.endpoint, adapter.http) == ("the-key", settings.endpoint(case.name), http)
    if isinstance(adapter, KieProvider):  # Kie's own options arrive through the same path as everything else
        assert (adapter.webhook_hmac_key, adapter.signature_window_seconds) == ("hmac", 120)
    assert build_provider(case.name, settings, ProviderCredentials(), http) is None


# -- submit ---------------------------------------------------------------------------------------


@each_provider
def test_a_submit_is_authenticated_json(case: ProviderCase) -> None:
    provider, recorder = case.build(ok(case.submit_answer()))
    result = provider.submit(JobRequest(prompt="a fox"), None)
    header, value = case.auth
    assert recorder.last.headers[header] == value
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert recorder.last.url.scheme == "https"
    assert result.task_id == case.task_id


@each_provider
def test_an_unsupported_request_is_refused_before_anything_is_sent(case: ProviderCase) -> None:
    provider, recorder = case.build()
    with pytest.raises(UnsupportedRequestError) as caught:
        provider.submit(JobRequest(prompt="p", **case.unsupported), None)
    assert [(item["field"], item["provider"]) for item in caught.value.details] == [
        (next(iter(case.unsupported)), case.name)
    ]
    assert recorder.requests == []


@each_provider
def test_a_404_on_submit_fails_over_to_the_next_provider(case: ProviderCase) -> None:
    provider, _ = case.build(httpx.Response(404, json={"message": "no such model"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.failover
    assert not caught.value.maybe_accepted


@each_provider
def test_a_success_answer_that_is_not_json_may_stand_for_a_created_task(case: ProviderCase) -> None:
    provider, _ = case.build(httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(ProviderError, match="not JSON") as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert caught.value.unreadable
    assert caught.value.maybe_accepted


@each_provider
@pytest.mark.parametrize(
    ("failure", "message", "maybe_accepted"),
    [
        (httpx.ConnectTimeout, "unreachable", False),
        (httpx.ConnectError, "unreachable", False),
        (httpx.ReadTimeout, "no answer", True),
        (httpx.RemoteProtocolError, "no answer", True),
    ],
)
def test_transport_failures_are_retryable_and_say_whether_a_task_may_exist(
    case: ProviderCase, failure: type[httpx.TransportError], message: str, maybe_accepted: bool
) -> None:
    provider, recorder = case.build(failure)
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert len(recorder.requests) == 1
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert message in caught.value.message
    assert caught.value.maybe_accepted is maybe_accepted
    assert caught.value.http_status is None


@each_provider
@pytest.mark.parametrize("retry_after", ["30", "http-date"])
def test_a_rate_limit_honours_retry_after(case: ProviderCase, retry_after: str) -> None:
    when = format_datetime(utcnow() + timedelta(seconds=120), usegmt=True)
    header = when if retry_after == "http-date" else retry_after
    provider, _ = case.build(httpx.Response(429, text="slow down", headers={"Retry-After": header}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert caught.value.retry_after is not None
    if retry_after == "http-date":
        assert 100 < caught.value.retry_after <= 120
    else:
        assert caught.value.retry_after == 30.0


# -- status ---------------------------------------------------------------------------------------


@each_provider
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ErrorKind.REJECTED),
        (401, ErrorKind.UNAVAILABLE),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RETRYABLE),
        (500, ErrorKind.RETRYABLE),
        (502, ErrorKind.RETRYABLE),
        (503, ErrorKind.RETRYABLE),
    ],
)
def test_http_errors_on_status_are_classified_alike(case: ProviderCase, code: int, kind: ErrorKind) -> None:
    provider, _ = case.build(httpx.Response(code, json={"message": f"error {code}"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(case.task_id)
    error = caught.value
    assert (error.provider, error.kind, error.http_status, error.provider_code, error.message) == (
        case.name,
        kind,
        code,
        str(code),
        f"error {code}",
    )


@each_provider
def test_a_status_answer_about_another_task_is_malformed(case: ProviderCase) -> None:
    provider, _ = case.build(ok(case.status_answer(task_id="someone-else")))
    with pytest.raises(ProviderError, match="someone-else") as caught:
        provider.status(case.task_id)
    assert caught.value.kind is ErrorKind.RETRYABLE
    assert caught.value.unreadable


@each_provider
def test_a_status_answer_naming_no_task_is_read_as_the_task_asked_about(case: ProviderCase) -> None:
    provider, _ = case.build(ok(case.status_answer(task_id=None)))
    assert provider.status(case.task_id).task_id == case.task_id


@each_provider
def test_an_unknown_status_value_is_never_final(case: ProviderCase) -> None:
    provider, _ = case.build(ok(case.status_answer(status=case.unknown_status)))
    status = provider.status(case.task_id)
    assert status.state is ProviderState.UNKNOWN
    assert not status.state.terminal
    assert status.raw_status == str(case.unknown_status)
    assert status.unrecognized == f"unknown status {str(case.unknown_status)!r}"
    assert status.answer is not None
    assert case.task_id in status.answer


@each_provider
def test_an_unrecognised_answer_is_kept_without_keys_tokens_or_signed_url_queries(case: ProviderCase) -> None:
    signed = "https://cdn.example.com/out.mp4?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
    answer = case.status_answer(status=case.unknown_status, note=f"echo {case.api_key} {signed}", token="t0ps3cret")
    provider, _ = case.build(ok(answer))
    status = provider.status(case.task_id)
    assert status.answer is not None
    for secret in (case.api_key, "abc123", "AKIA", "t0ps3cret"):
        assert secret not in status.answer
    assert "https://cdn.example.com/out.mp4?[redacted]" in status.answer


@each_provider
def test_a_recognised_answer_is_not_marked(case: ProviderCase) -> None:
    provider, _ = case.build(ok(case.status_answer()))
    status = provider.status(case.task_id)
    assert status.state in (ProviderState.QUEUED, ProviderState.RUNNING)
    assert (status.unrecognized, status.answer) == (None, None)


@each_provider
def test_a_status_answer_in_an_unknown_shape_is_unrecognized_with_the_answer(case: ProviderCase) -> None:
    provider, _ = case.build(ok(case.status_answer(task_id="someone-else")))
    with pytest.raises(ProviderError) as caught:
        provider.status(case.task_id)
    assert caught.value.unrecognized
    assert caught.value.answer is not None
    assert "someone-else" in caught.value.answer


@each_provider
def test_an_empty_task_id_is_refused_before_anything_is_sent(case: ProviderCase) -> None:
    provider, recorder = case.build()
    with pytest.raises(ValueError, match="id is required"):
        provider.status("")
    assert recorder.requests == []


@each_provider
def test_a_status_timeout_reaches_the_request(case: ProviderCase) -> None:
    provider, recorder = case.build(ok(case.status_answer()))
    provider.status(case.task_id, timeout=2.5)
    assert recorder.last.extensions["timeout"]["read"] == 2.5


# -- callbacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if not c.adapter.capabilities.callbacks], ids=str)
def test_providers_without_callbacks_refuse_every_callback(case: ProviderCase) -> None:
    provider, _ = case.build()
    with pytest.raises(CallbackRejectedError, match="does not send callbacks"):
        provider.parse_callback(json.dumps(case.status_answer()).encode(), {})


# -- motion control -------------------------------------------------------------------------------

MOTION = {"image_url": "https://img.example.com/c.png", "video_url": "https://cdn.example.com/d.mp4"}


@each_provider
def test_motion_control_is_taken_where_offered_and_refused_naming_it_elsewhere(case: ProviderCase) -> None:
    request = JobRequest.model_validate({"motion_control": MOTION})
    violations = case.adapter.capabilities.check(request)
    if case.adapter.capabilities.motion_control is None:
        assert [(v.field, v.provider, v.rule) for v in violations] == [
            ("motion_control", case.name, "does not offer motion control")
        ]
        provider, recorder = case.build()
        with pytest.raises(UnsupportedRequestError):
            provider.submit(request, None)
        assert recorder.requests == []
    else:
        assert violations == []


@pytest.mark.parametrize("case", [c for c in CASES if c.adapter.capabilities.motion_control is not None], ids=str)
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"negative_prompt": "blur"}, "negative_prompt"),
        ({"cfg_scale": 0.5}, "cfg_scale"),
        ({"watermark": False}, "watermark"),
        ({"num_outputs": 2}, "num_outputs"),
        ({"prompt": "p" * 2501}, "prompt"),
    ],
)
def test_what_no_motion_control_api_takes_is_refused(case: ProviderCase, extra: dict[str, object], field: str) -> None:
    request = JobRequest.model_validate({"motion_control": MOTION}).model_copy(update=extra)
    assert [v.field for v in case.adapter.capabilities.check(request)] == [field]


# -- hostile answers: read as unrecognized, never a crash ----------------------------------------

DEEP = '{"data": ' + "[" * 50_000 + "]" * 50_000 + "}"
HUGE_NUMBER = '{"code": 200, "data": {"n": ' + "9" * 5_000 + "}}"


@each_provider
@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["50k-nested", "5000-digit-integer"])
def test_a_status_answer_json_cannot_hold_is_unrecognized_not_a_crash(case: ProviderCase, body: str) -> None:
    provider, _ = case.build(httpx.Response(200, text=body, headers={"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(case.task_id)
    assert caught.value.unrecognized
    assert caught.value.answer


@each_provider
@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["50k-nested", "5000-digit-integer"])
def test_a_submit_answer_json_cannot_hold_is_a_provider_error_not_a_crash(case: ProviderCase, body: str) -> None:
    provider, _ = case.build(httpx.Response(200, text=body, headers={"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.submit(JobRequest(prompt="p"), None)
    assert caught.value.maybe_accepted  # a 2xx we cannot read may stand for a created task


@each_provider
@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["50k-nested", "5000-digit-integer"])
def test_an_error_answer_json_cannot_hold_keeps_its_status_meaning(case: ProviderCase, body: str) -> None:
    provider, _ = case.build(httpx.Response(503, text=body, headers={"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.status(case.task_id)
    assert (caught.value.kind, caught.value.http_status) == (ErrorKind.RETRYABLE, 503)


@each_provider
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("429", ErrorKind.RETRYABLE),
        (402, ErrorKind.UNAVAILABLE),
        ("²", ErrorKind.REJECTED),  # str.isdigit says yes, int refuses it
        ("٤٢٩", ErrorKind.REJECTED),  # Arabic-Indic 429: int reads it, we do not
    ],
)
def test_an_envelope_error_code_is_a_number_only_in_ascii_digits(
    case: ProviderCase, code: object, kind: ErrorKind
) -> None:
    provider, _ = case.build()
    error = provider.envelope_error(code, None, httpx.Response(200))  # type: ignore[arg-type]
    assert error.kind is kind
    assert error.provider_code == str(code)
