"""Every API error code has its class, details attached; unknown codes fall back to their status's class."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import kling_relay
import pytest
from kling_relay import errors
from kling_relay._http import error_from_response

from shared import errors as server_errors
from shared.gateways import archive_store
from shared.providers import errors as provider_errors
from shared.services import submit, tenants

# The codes the API answers with today (shared/errors.py, the gateway's own responses) and those arriving.
API_CODES = {
    "bad_request": (400, errors.BadRequestError),
    "validation_error": (422, errors.RequestValidationError),
    "unsupported_request": (422, errors.UnsupportedRequestError),
    "unsafe_url": (422, errors.UnsafeUrlError),
    "unauthorized": (401, errors.AuthenticationError),
    "callback_rejected": (401, errors.CallbackRejectedError),
    "forbidden": (403, errors.PermissionDeniedError),
    "not_found": (404, errors.NotFoundError),
    "conflict": (409, errors.ConflictError),
    "idempotency_conflict": (409, errors.IdempotencyConflictError),
    "job_terminal": (409, errors.JobTerminalError),
    "invalid_transition": (409, errors.InvalidTransitionError),
    "task_claimed": (409, errors.TaskClaimedError),
    "payload_too_large": (413, errors.PayloadTooLargeError),
    "throttled": (429, errors.ThrottledError),
    "rate_limited": (429, errors.RateLimitedError),
    "too_many_active_jobs": (429, errors.TooManyActiveJobsError),
    "budget_exceeded": (429, errors.BudgetExceededError),
    "internal_error": (500, errors.InternalServerError),
    "configuration_error": (500, errors.ServerConfigurationError),
    "provider_rejected": (502, errors.ProviderRejectedError),
    "provider_error": (502, errors.ProviderCallError),
    "provider_unavailable": (503, errors.ProviderUnavailableError),
    "no_provider_available": (503, errors.NoProviderAvailableError),
    "tracking_unavailable": (503, errors.TrackingUnavailableError),
    "archive_store_unavailable": (503, errors.StorageUnavailableError),
}


def _every_subclass(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _every_subclass(sub)
    return found


def test_every_code_the_server_raises_has_a_class() -> None:
    assert submit.TrackingStartError.code in API_CODES  # modules defining errors of their own
    assert provider_errors.ProviderError.code in API_CODES
    assert archive_store.ArchiveStoreError.code in API_CODES
    # Raised to the operator's CLI only (provisioning a tenant), never in an API answer.
    operator_only = {tenants.UnknownTierError}
    server_codes = {
        cls.code
        for cls in _every_subclass(server_errors.RelayError) - operator_only
        if cls.__module__.startswith("shared")
    }
    assert server_codes <= set(API_CODES), f"codes without an SDK class: {server_codes - set(API_CODES)}"


@pytest.mark.parametrize(("code", "expected"), API_CODES.items(), ids=list(API_CODES))
def test_an_error_answer_becomes_its_codes_class_with_the_details(code: str, expected: tuple[int, type]) -> None:
    status, cls = expected
    response = httpx.Response(
        status,
        json={"error": {"code": code, "message": "what went wrong", "details": [{"field": "prompt"}]}},
        headers={"x-amzn-RequestId": "req-1", "Retry-After": "5"},
    )
    error = error_from_response(response)
    assert type(error) is cls
    assert isinstance(error, kling_relay.APIStatusError)
    assert (error.status_code, error.code, error.message) == (status, code, "what went wrong")
    assert error.details == [{"field": "prompt"}]
    assert (error.request_id, error.retry_after) == ("req-1", 5.0)
    assert str(error) == f"{status} {code}: what went wrong"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
        (429, errors.TooManyRequestsError),
        (503, errors.ServiceUnavailableError),
        (504, errors.InternalServerError),
        (418, errors.APIStatusError),
    ],
)
def test_an_unknown_code_falls_back_to_its_status(status: int, cls: type) -> None:
    error = error_from_response(httpx.Response(status, json={"error": {"code": "added_later", "message": "new"}}))
    assert type(error) is cls
    assert error.code == "added_later"


def test_answers_outside_the_error_shape_still_raise_typed() -> None:
    gateway = error_from_response(httpx.Response(403, json={"message": "Forbidden"}))
    assert (type(gateway), gateway.code, gateway.message) == (errors.PermissionDeniedError, "forbidden", "Forbidden")
    html = error_from_response(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert (type(html), html.code, html.message) == (
        errors.InternalServerError,
        "internal_error",
        "<html>Bad Gateway</html>",
    )
    empty = error_from_response(httpx.Response(429))
    assert (type(empty), empty.code, empty.message) == (errors.TooManyRequestsError, "http_429", "Too Many Requests")


def test_a_success_that_is_not_json_or_not_a_job_is_an_api_response_error(client, sleeps) -> None:
    relay, _ = client(lambda _: httpx.Response(200, text="<html>"))
    with pytest.raises(kling_relay.APIResponseError, match="not JSON"):
        relay.jobs.get("job_1")
    relay, _ = client(lambda _: httpx.Response(200, json={"id": "job_1"}))
    with pytest.raises(kling_relay.APIResponseError, match="not a valid Job"):
        relay.jobs.get("job_1")


def test_usage_on_a_deployment_without_it_is_a_clear_typed_error(client, sleeps) -> None:
    relay, api = client(
        lambda _: httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})
    )
    with pytest.raises(kling_relay.UsageNotAvailableError, match="does not serve GET /v1/usage") as raised:
        relay.usage()
    assert isinstance(raised.value, kling_relay.NotFoundError)
    assert raised.value.status_code == 404
    assert api.requests[0].url.path == "/v1/usage"


def test_usage_keeps_every_field_the_api_sends(client, sleeps) -> None:
    body = {"active_jobs": 3, "limits": {"max_active_jobs": 10}, "credits_this_month": {"kie": 12.5}}
    relay, _ = client(lambda _: httpx.Response(200, json=body))
    usage = relay.usage()
    assert usage.active_jobs == 3
    assert usage.limits == {"max_active_jobs": 10}
    assert usage.model_extra == {"credits_this_month": {"kie": 12.5}}
    assert usage.to_dict() == body


def test_every_code_api_gateway_answers_with_has_a_class() -> None:
    source = (Path(__file__).resolve().parents[3] / "infra" / "api.py").read_text(encoding="utf-8")
    gateway_codes = set(re.findall(r"ResponseType\.\w+, \"(\w+)\"", source))
    assert "throttled" in gateway_codes
    assert gateway_codes <= set(API_CODES), f"codes without an SDK class: {gateway_codes - set(API_CODES)}"
