"""Hostile request bodies and ids: each is refused in the one error shape, and nothing is recorded.

Too-deep JSON and integers past the interpreter's digit limit are 400 (not an unhandled exception), a body
that is not JSON is 415, hidden characters in free text are 422 naming the field, and an id with a
trailing newline (which Python's `$` would accept) is no id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler
from shared.models.common import JobStatus
from shared.repository.jobs import JobRepository, decode_cursor, encode_cursor
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, HttpAnswer, answer, api_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

KIE_SUBMIT = "https://api.kie.ai/api/v1/jobs/createTask"
SOME_JOB = "job_01m7ya4387v8ddd0fnnwa521gc"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        mocked.post(KIE_SUBMIT).respond(200, json={"code": 200, "msg": "success", "data": {"taskId": "t-1"}})
        yield mocked


@pytest.fixture
def rt(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter) -> Runtime:
    return install_runtime(cloud.runtime(httpx.Client()))


def call(method: str, path: str, **kwargs: Any) -> HttpAnswer:
    return answer(handler.lambda_handler(api_event(method, path, **kwargs), FakeContext()))


def submit_raw(raw: str, content_type: str = "application/json") -> HttpAnswer:
    return call("POST", "/jobs", raw_body=raw, headers={"Content-Type": content_type})


def assert_error(result: HttpAnswer, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, result.body
    assert set(result.body) == {"error"}
    error: dict[str, Any] = result.body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert (error["code"], bool(error["message"])) == (code, True)
    return error


def assert_nothing_recorded(cloud: Cloud, router: respx.MockRouter) -> None:
    assert cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"] == []
    assert cloud.executions() == []
    assert router.calls.call_count == 0


# -- bodies the JSON parser cannot take ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        pytest.param("[" * 50_000 + "]" * 50_000, "json_too_deep", id="50000-nested-arrays"),
        pytest.param('{"a":' * 50_000 + "1" + "}" * 50_000, "json_too_deep", id="50000-nested-objects"),
        pytest.param('{"prompt": "a fox", "num_outputs": ' + "1" * 5_000 + "}", "json_number_too_long", id="digits"),
        pytest.param('{"prompt": "a fox", "metadata": {"k": -' + "9" * 4_301 + "}}", "json_number_too_long", id="neg"),
    ],
)
def test_json_the_parser_refuses_is_400_in_the_error_shape(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, raw: str, kind: str
) -> None:
    error = assert_error(submit_raw(raw), 400, "bad_request")
    assert [(d["field"], d["type"]) for d in error["details"]] == [("body", kind)]
    assert_nothing_recorded(cloud, router)


def test_a_long_number_the_parser_takes_is_a_field_error(rt: Runtime, cloud: Cloud, router: respx.MockRouter) -> None:
    error = assert_error(submit_raw('{"prompt": "a fox", "num_outputs": ' + "1" * 4_000 + "}"), 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["num_outputs"]
    assert_nothing_recorded(cloud, router)


@pytest.mark.parametrize("depth", [200, 5_000, 9_000])
def test_nesting_the_parser_takes_is_a_field_error(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, depth: int
) -> None:
    raw = '{"prompt": "a fox", "metadata": {"k": ' + "[" * depth + "]" * depth + "}}"
    error = assert_error(submit_raw(raw), 422, "validation_error")
    assert error["details"][0]["field"] == "metadata.k"
    assert_nothing_recorded(cloud, router)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain; charset=utf-8", "application/xml", "application/octet-stream"]
)
def test_a_body_that_is_not_json_is_415_in_the_error_shape(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, content_type: str
) -> None:
    error = assert_error(submit_raw('{"prompt": "a fox"}', content_type), 415, "unsupported_media_type")
    assert [(d["field"], d["type"]) for d in error["details"]] == [("body", "unsupported_content_type")]
    assert content_type.split(";", maxsplit=1)[0] in error["details"][0]["message"]
    assert_nothing_recorded(cloud, router)


def test_the_openapi_document_lists_the_415(rt: Runtime) -> None:
    document = call("GET", "/openapi.json", tenant=None).body
    assert "415" in document["paths"]["/jobs"]["post"]["responses"]


# -- hidden characters in free text ----------------------------------------------------------------------

HIDDEN = {
    "nul": "\x00",
    "escape": "\x1b",
    "delete": "\x7f",
    "c1": "\x85",
    "rlo": "\u202e",
    "lri": "\u2066",
    "pdi": "\u2069",
    "rlm": "\u200f",
    "alm": "\u061c",
}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda c: {"prompt": f"a fox{c} in snow"}, "prompt"),
        (lambda c: {"prompt": "a fox", "negative_prompt": f"blur{c}"}, "negative_prompt"),
        (lambda c: {"prompt": "a fox", "metadata": {"order": f"42{c}"}}, "metadata.order"),
        (lambda c: {"prompt": "a fox", "metadata": {f"order{c}": "42"}}, "metadata"),
    ],
    ids=["prompt", "negative_prompt", "metadata-value", "metadata-key"],
)
def test_control_and_bidi_characters_are_422_naming_the_field(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, char: str, build: Callable[[str], Any], field: str
) -> None:
    error = assert_error(call("POST", "/jobs", body=build(char)), 422, "validation_error")
    fields = [detail["field"] for detail in error["details"]]
    assert any(name == field or name.startswith(f"{field}.") for name in fields), fields
    if field != "metadata":  # a key fails its pattern; a text field says which character and where
        assert f"U+{ord(char):04X}" in error["details"][0]["message"]
    assert_nothing_recorded(cloud, router)


def test_line_breaks_and_tabs_stay_allowed_in_a_prompt(rt: Runtime, router: respx.MockRouter) -> None:
    result = call("POST", "/jobs", body={"prompt": "a fox\n\tin snow\r\n", "provider": "kie"})
    assert result.status == 202, result.body
    assert result.body["request"]["prompt"] == "a fox\n\tin snow"


def test_visible_unicode_stays_allowed(rt: Runtime, router: respx.MockRouter) -> None:
    body = {"prompt": "زرافة تركض — 狐狸在雪中 🦊", "provider": "kie", "metadata": {"note": "مرحبا ✓"}}
    assert call("POST", "/jobs", body=body).status == 202


# -- ids are matched whole ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00"], ids=["lf", "crlf", "nul"])
def test_a_job_id_with_a_control_character_after_it_matches_no_route(
    rt: Runtime, jobs: JobRepository, suffix: str
) -> None:
    """`$` would match before the newline and hand the route the id without it: the stored job would answer."""
    jobs.create(build_job(id=SOME_JOB, tenant_id="tenant-a"))
    assert call("GET", f"/jobs/{SOME_JOB}").status == 200
    for method, path in (("GET", f"/jobs/{SOME_JOB}{suffix}"), ("POST", f"/jobs/{SOME_JOB}{suffix}/cancel")):
        event = api_event(method, "/", path_parameters={"job_id": SOME_JOB + suffix})
        event["path"] = path  # as API Gateway passes `%0A` on: decoded (urlsplit would drop it)
        result = answer(handler.lambda_handler(event, FakeContext()))
        assert (result.status, result.error_code) == (404, "not_found"), (method, result.body)
        assert result.body["error"]["message"] == "no such route"
    stored = jobs.get(SOME_JOB)
    assert stored is not None
    assert stored.status is JobStatus.SUBMITTING  # the cancel never reached it


def test_a_job_id_with_a_space_after_it_names_the_field(rt: Runtime) -> None:
    result = call("GET", f"/jobs/{SOME_JOB} ", path_parameters={"job_id": SOME_JOB + " "})
    error = assert_error(result, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["path.job_id"]


def test_the_repository_and_the_cursor_match_job_ids_whole(rt: Runtime, jobs: JobRepository) -> None:
    reads: list[Any] = []
    original = jobs.client.get_item
    jobs.client.get_item = lambda **kw: reads.append(kw) or original(**kw)  # type: ignore[method-assign]
    assert jobs.get(SOME_JOB + "\n") is None
    assert reads == []  # refused before any read
    assert decode_cursor(encode_cursor(SOME_JOB)) == SOME_JOB
    result = call("GET", f"/jobs?cursor={encode_cursor(SOME_JOB + chr(10))}")
    assert_error(result, 400, "bad_request")


@pytest.mark.parametrize("tenant", ["tenant-a\n", "tenant-a\x00", "\ntenant-a"])
def test_a_tenant_id_with_a_newline_from_the_authorizer_is_no_access(rt: Runtime, tenant: str) -> None:
    assert_error(call("GET", "/jobs", tenant=tenant), 401, "unauthorized")
