"""`POST /jobs` refusals and routing: request validation, provider rules, `auto`, configuration, SSRF.

Every refusal must leave no trace: no job or idempotency item, no poller execution, no provider call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler
from shared.models.common import PROVIDER_NAMES, JobStatus
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import PROVIDER_KEYS, Cloud
from tests.support.events import FakeContext, HttpAnswer, answer, api_event
from tests.support.workflow import then_dispatched

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

PROVIDER_ANSWERS = Path(__file__).resolve().parent.parent / "events" / "providers"
SUBMIT: dict[str, tuple[str, str]] = {
    "vidgo": ("https://api.vidgo.ai/api/generate/submit", "vidgo/submit_ok.json"),
    "kie": ("https://api.kie.ai/api/v1/jobs/createTask", "kie/submit_ok.json"),
    "aimlapi": ("https://api.aimlapi.com/v2/video/generations", "aimlapi/submit_accepted.json"),
    "pixwith": ("https://api.pixwith.ai/api/task/create", "pixwith/submit_accepted.json"),
    "apimart": ("https://api.apimart.ai/v1/videos/generations", "apimart/submit_accepted.json"),
}
FIRST = "https://img.example.com/first.png"
LAST = "https://cdn.example.com/last.png"
HOOK = "https://hooks.example.com/kling"


def call(body: Any = None, *, raw_body: str | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    event = api_event("POST", "/jobs", body=body, raw_body=raw_body, headers=headers)
    return then_dispatched(answer(handler.lambda_handler(event, FakeContext())))


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """Every provider accepts; tests check which one was asked (or that none was)."""
    with respx.mock(assert_all_called=False) as mocked:
        for name, (url, answer_file) in SUBMIT.items():
            mocked.post(url, name=name).respond(200, json=json.loads((PROVIDER_ANSWERS / answer_file).read_text()))
        yield mocked


@pytest.fixture
def runtime_with(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], router: respx.MockRouter
) -> Callable[..., Runtime]:
    def build(**settings: Any) -> Runtime:
        return install_runtime(cloud.runtime(httpx.Client(), **settings))

    return build


@pytest.fixture
def rt(runtime_with: Callable[..., Runtime]) -> Runtime:
    return runtime_with()


def assert_nothing_recorded(cloud: Cloud, router: respx.MockRouter) -> None:
    assert cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"] == []
    assert cloud.executions() == []
    assert router.calls.call_count == 0


def assert_error(result: HttpAnswer, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, result.body
    assert set(result.body) == {"error"}
    error: dict[str, Any] = result.body["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] == code
    return error


def called(router: respx.MockRouter) -> list[str]:
    return [name for name in SUBMIT if router.routes[name].call_count]


# -- malformed and invalid requests --------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{bad json", '{"prompt": "a fox",}', "{'prompt': 'a fox'}", '{"prompt": "a'])
def test_malformed_json_is_400(rt: Runtime, cloud: Cloud, router: respx.MockRouter, raw: str) -> None:
    error = assert_error(call(raw_body=raw), 400, "bad_request")
    assert error["details"][0]["field"] == "body"
    assert_nothing_recorded(cloud, router)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "\u001f"}, "prompt"),  # found by `make fuzz`: a control character only
        ({"prompt": "\u200b\u2060 \t"}, "prompt"),
        ({"prompt": "p" * 2501}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "a fox", "negative_prompt": "n" * 2501}, "negative_prompt"),
        ({"prompt": "a fox", "provider": "openai"}, "provider"),
        ({"prompt": "a fox", "duration": 7}, "duration"),
        ({"prompt": "a fox", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "a fox", "sound": "maybe"}, "sound"),
        ({"prompt": "a fox", "quality": "ultra"}, "quality"),
        ({"prompt": "a fox", "first_frame_url": "not a url"}, "first_frame_url"),
        ({"prompt": "a fox", "first_frame_url": "ftp://img.example.com/a.png"}, "first_frame_url"),
        ({"prompt": "a fox", "first_frame_url": FIRST, "last_frame_url": "//x"}, "last_frame_url"),
        ({"prompt": "a fox", "cfg_scale": 1.5}, "cfg_scale"),
        ({"prompt": "a fox", "cfg_scale": -0.1}, "cfg_scale"),
        ({"prompt": "a fox", "num_outputs": 0}, "num_outputs"),
        ({"prompt": "a fox", "num_outputs": 5}, "num_outputs"),
        ({"prompt": "a fox", "prompt_optimization": "often"}, "prompt_optimization"),
        ({"prompt": "a fox", "watermark": "on top"}, "watermark"),
        ({"prompt": "a fox", "webhook_url": "hooks"}, "webhook_url"),
        ({"prompt": "a fox", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"prompt": "a fox", "metadata": {"bad key": "v"}}, "metadata"),
        ({"prompt": "a fox", "metadata": {"k": "v" * 257}}, "metadata.k"),
        ({"prompt": "a fox", "metadata": {"k": 1}}, "metadata.k"),
        ({"prompt": "a fox", "seed": 7}, "seed"),
    ],
)
def test_each_field_constraint_is_422_naming_the_field(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, body: dict[str, Any], field: str
) -> None:
    error = assert_error(call(body), 422, "validation_error")
    fields = [detail["field"] for detail in error["details"]]
    assert any(name == field or name.startswith(f"{field}.") for name in fields), fields
    assert field.split(".", maxsplit=1)[0] in error["message"]
    assert_nothing_recorded(cloud, router)


def test_a_non_finite_cfg_scale_is_422(rt: Runtime, cloud: Cloud, router: respx.MockRouter) -> None:
    error = assert_error(call(raw_body='{"prompt": "a fox", "cfg_scale": NaN}'), 422, "validation_error")
    assert [detail["field"] for detail in error["details"]] == ["cfg_scale"]
    assert_nothing_recorded(cloud, router)


def test_a_last_frame_without_a_first_frame_is_422_saying_so(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter
) -> None:
    error = assert_error(call({"prompt": "a fox", "last_frame_url": LAST}), 422, "validation_error")
    assert [detail["field"] for detail in error["details"]] == ["last_frame_url"]
    assert "a last frame needs first_frame_url" in error["details"][0]["message"]
    assert_nothing_recorded(cloud, router)


@pytest.mark.parametrize("raw", ["[]", '"a fox"', "null", "42"])
def test_a_body_that_is_not_an_object_is_422(rt: Runtime, cloud: Cloud, router: respx.MockRouter, raw: str) -> None:
    error = assert_error(call(raw_body=raw), 422, "validation_error")
    assert [detail["field"] for detail in error["details"]] == ["body"]
    assert_nothing_recorded(cloud, router)


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_idempotency_key_out_of_bounds_is_422_naming_the_header(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, key: str
) -> None:
    error = assert_error(call({"prompt": "a fox"}, headers={"Idempotency-Key": key}), 422, "validation_error")
    assert [detail["field"].lower() for detail in error["details"]] == ["header.idempotency-key"]
    assert_nothing_recorded(cloud, router)


# -- provider rules for a named provider ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "provider", "field", "rule"),
    [
        (
            {"first_frame_url": FIRST, "last_frame_url": LAST},
            "apimart",
            "last_frame_url",
            "supports a last frame only with quality=pro",
        ),
        (
            {"first_frame_url": FIRST, "last_frame_url": LAST, "quality": "pro", "sound": True},
            "apimart",
            "last_frame_url",
            "cannot combine a last frame with sound",
        ),
        ({"sound": True}, "apimart", "sound", "generates audio only with quality=pro"),
        ({"prompt": "p" * 1001}, "kie", "prompt", "accepts at most 1000 characters (got 1001)"),
        ({"quality": "pro"}, "kie", "quality", "has a single quality tier; omit quality"),
        ({"quality": "std"}, "aimlapi", "quality", "offers quality ['pro']"),
        (
            {"first_frame_url": FIRST, "cfg_scale": 0.5},
            "aimlapi",
            "cfg_scale",
            "supports cfg_scale for text-to-video only",
        ),
        ({"cfg_scale": 0.5}, "vidgo", "cfg_scale", "does not support cfg_scale"),
        ({"num_outputs": 2}, "vidgo", "num_outputs", "makes at most 1 output(s) per job"),
        ({"num_outputs": 2}, "kie", "num_outputs", "makes at most 1 output(s) per job"),
        ({"num_outputs": 2}, "aimlapi", "num_outputs", "makes at most 1 output(s) per job"),
        ({"num_outputs": 2}, "apimart", "num_outputs", "makes at most 1 output(s) per job"),
        ({"first_frame_url": FIRST, "last_frame_url": LAST}, "kie", "last_frame_url", "does not support a last frame"),
        ({"negative_prompt": "blur"}, "vidgo", "negative_prompt", "does not support a negative prompt"),
        (
            {"first_frame_url": FIRST, "aspect_ratio": "9:16"},
            "kie",
            "aspect_ratio",
            "takes the aspect ratio from the first frame; omit aspect_ratio",
        ),
        ({"watermark": False}, "pixwith", "watermark", "does not let the watermark be chosen; omit watermark"),
        ({"prompt_optimization": True}, "aimlapi", "prompt_optimization", "does not offer prompt optimization"),
    ],
)
def test_a_field_the_named_provider_cannot_honour_is_422_naming_field_provider_and_rule(
    rt: Runtime,
    cloud: Cloud,
    router: respx.MockRouter,
    body: dict[str, Any],
    provider: str,
    field: str,
    rule: str,
) -> None:
    request = {"prompt": "a fox", "provider": provider, **body}
    error = assert_error(call(request), 422, "unsupported_request")
    assert {"field": field, "provider": provider, "rule": rule} in error["details"]
    assert f"{field}: {provider} {rule}" in error["message"]
    assert_nothing_recorded(cloud, router)


def test_every_broken_rule_is_listed(rt: Runtime, cloud: Cloud, router: respx.MockRouter) -> None:
    body = {"prompt": "p" * 1001, "provider": "kie", "quality": "pro", "num_outputs": 2}
    error = assert_error(call(body), 422, "unsupported_request")
    assert sorted(detail["field"] for detail in error["details"]) == ["num_outputs", "prompt", "quality"]
    assert all(detail["provider"] == "kie" for detail in error["details"])
    assert_nothing_recorded(cloud, router)


# -- auto routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "chosen"),
    [
        ({}, "vidgo"),
        ({"quality": "pro", "first_frame_url": FIRST, "last_frame_url": LAST}, "apimart"),
        ({"num_outputs": 3}, "pixwith"),
        ({"negative_prompt": "blur"}, "aimlapi"),
        ({"prompt_optimization": True}, "pixwith"),
        ({"quality": "std", "watermark": False}, "apimart"),
    ],
)
def test_auto_picks_the_first_provider_in_order_that_supports_the_request(
    rt: Runtime, router: respx.MockRouter, body: dict[str, Any], chosen: str
) -> None:
    result = call({"prompt": "a fox", **body})
    assert result.status == 202, result.body
    assert result.body["provider"] == chosen
    assert result.body["request"]["provider"] == "auto"
    assert called(router) == [chosen]
    stored = rt.jobs.get(result.body["id"])
    assert stored is not None
    assert stored.provider == chosen
    assert stored.status is JobStatus.QUEUED


def test_auto_follows_the_configured_order(runtime_with: Callable[..., Runtime], router: respx.MockRouter) -> None:
    runtime_with(provider_order=("apimart", "pixwith", "kie"))
    result = call({"prompt": "a fox"})
    assert result.status == 202
    assert result.body["provider"] == "apimart"
    assert called(router) == ["apimart"]


def test_auto_refuses_with_422_when_no_provider_can_honour_the_request(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter
) -> None:
    body = {"prompt": "a fox", "num_outputs": 3, "quality": "pro", "first_frame_url": FIRST, "last_frame_url": LAST}
    error = assert_error(call(body), 422, "unsupported_request")
    assert error["message"].startswith("no enabled provider supports this request")
    assert {detail["provider"] for detail in error["details"]} == set(PROVIDER_NAMES)
    assert {"field": "num_outputs", "provider": "apimart", "rule": "makes at most 1 output(s) per job"} in error[
        "details"
    ]
    assert {"field": "last_frame_url", "provider": "pixwith", "rule": "does not support a last frame"} in error[
        "details"
    ]
    assert_nothing_recorded(cloud, router)


def test_auto_never_routes_to_a_disabled_provider(
    runtime_with: Callable[..., Runtime], cloud: Cloud, router: respx.MockRouter
) -> None:
    runtime_with(enabled_providers=("vidgo", "kie", "aimlapi", "apimart"))
    error = assert_error(call({"prompt": "a fox", "num_outputs": 3}), 422, "unsupported_request")
    assert "pixwith" not in {detail["provider"] for detail in error["details"]}
    assert_nothing_recorded(cloud, router)


def test_a_named_disabled_provider_is_422(
    runtime_with: Callable[..., Runtime], cloud: Cloud, router: respx.MockRouter
) -> None:
    runtime_with(enabled_providers=("vidgo", "aimlapi"))
    error = assert_error(call({"prompt": "a fox", "provider": "kie"}), 422, "unsupported_request")
    assert error["details"] == [{"field": "provider", "provider": "kie", "rule": "is not enabled"}]
    assert_nothing_recorded(cloud, router)


# -- providers without a key ---------------------------------------------------------------------


def without_key(name: str) -> dict[str, str]:
    return {provider: key for provider, key in PROVIDER_KEYS.items() if provider != name}


def test_a_named_provider_with_no_key_is_503_provider_unavailable(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter
) -> None:
    cloud.set_provider_keys(without_key("kie"))
    error = assert_error(call({"prompt": "a fox", "provider": "kie"}), 503, "provider_unavailable")
    assert error["details"] == {"provider": "kie", "reason": "not_configured"}
    assert_nothing_recorded(cloud, router)


def test_auto_skips_a_provider_with_no_key(rt: Runtime, cloud: Cloud, router: respx.MockRouter) -> None:
    cloud.set_provider_keys(without_key("vidgo"))
    result = call({"prompt": "a fox"})
    assert result.status == 202
    assert result.body["provider"] == "kie"
    assert called(router) == ["kie"]


def test_auto_is_503_when_only_providers_without_a_key_could_take_it(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter
) -> None:
    cloud.set_provider_keys(without_key("pixwith"))
    error = assert_error(call({"prompt": "a fox", "num_outputs": 2}), 503, "provider_unavailable")
    assert error["details"] == {"providers": ["pixwith"], "reason": "not_configured"}
    assert_nothing_recorded(cloud, router)


# -- SSRF ----------------------------------------------------------------------------------------

UNSAFE_URLS = [
    pytest.param("https://127.0.0.1/a.png", "loopback address", id="loopback"),
    pytest.param("https://[::1]/a.png", "loopback address", id="ipv6-loopback"),
    pytest.param("https://10.1.2.3/a.png", "private address", id="private-10"),
    pytest.param("https://192.168.1.20/a.png", "private address", id="private-192"),
    pytest.param("https://172.16.5.4/a.png", "private address", id="private-172"),
    pytest.param("https://169.254.10.1/a.png", "link-local or cloud metadata address", id="link-local"),
    pytest.param("https://169.254.169.254/latest/meta-data/", "link-local or cloud metadata address", id="metadata"),
    pytest.param("https://[fd00:ec2::254]/latest/meta-data/", "private address", id="metadata-ipv6"),
    pytest.param("https://[::ffff:127.0.0.1]/a.png", "loopback address", id="ipv4-mapped-loopback"),
    pytest.param(
        "https://[::ffff:169.254.169.254]/", "link-local or cloud metadata address", id="ipv4-mapped-metadata"
    ),
    pytest.param("https://2130706433/a.png", "loopback address", id="decimal-ipv4"),
    pytest.param("https://0x7f000001/a.png", "loopback address", id="hex-ipv4"),
    pytest.param("https://0x7f.1/a.png", "loopback address", id="short-hex-ipv4"),
    pytest.param("https://0177.0.0.1/a.png", "loopback address", id="octal-ipv4"),
    pytest.param("https://0.0.0.0/a.png", "non-public address", id="unspecified"),
    pytest.param("https://localhost/a.png", "loopback address", id="localhost"),
    pytest.param("https://app.localhost/a.png", "loopback address", id="dot-localhost"),
    pytest.param("http://img.example.com/a.png", "only https URLs are allowed", id="http-scheme"),
    pytest.param("https://user:secret@img.example.com/a.png", "URLs with credentials are not allowed", id="creds"),
    pytest.param("https://nowhere.invalid/a.png", "host does not resolve", id="unresolvable"),
]


@pytest.mark.parametrize(("url", "reason"), UNSAFE_URLS)
def test_an_unsafe_url_is_422_unsafe_url_naming_the_field_and_nothing_is_stored(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, url: str, reason: str
) -> None:
    for field in ("webhook_url", "first_frame_url", "last_frame_url"):
        # Otherwise a request apimart takes, so the URL is the only thing wrong with it.
        body = {
            "prompt": "a fox",
            "provider": "apimart",
            "quality": "pro",
            "first_frame_url": FIRST,
            "last_frame_url": LAST,
            "webhook_url": HOOK,
            field: url,
        }
        error = assert_error(call(body), 422, "unsafe_url")
        assert error["details"]["field"] == field
        assert error["details"]["reason"] == reason
        assert error["message"] == f"{field}: {reason}"
        assert_nothing_recorded(cloud, router)


def test_the_same_request_with_public_urls_is_accepted(rt: Runtime, router: respx.MockRouter) -> None:
    body = {
        "prompt": "a fox",
        "provider": "apimart",
        "quality": "pro",
        "first_frame_url": FIRST,
        "last_frame_url": LAST,
        "webhook_url": HOOK,
    }
    result = call(body)
    assert result.status == 202
    sent = json.loads(router.routes["apimart"].calls.last.request.content)
    assert sent["image_urls"] == [FIRST, LAST]
