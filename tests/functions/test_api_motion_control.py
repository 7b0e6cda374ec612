"""`POST /jobs` with motion control: the mode's rules, routing to the three providers that offer it, the
reference video's length read at admission (and refused outside 3-10 s or 3-30 s), and the job's cost."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from functions.api import handler
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.support.events import FakeContext, HttpAnswer, answer, api_event
from tests.support.mp4 import mp4
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
CHARACTER = "https://img.example.com/character.png"
DANCE = "https://cdn.example.com/dance.mp4"
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def motion(**fields: Any) -> dict[str, Any]:
    return {"image_url": CHARACTER, "video_url": DANCE, **fields}


def call(body: Any) -> HttpAnswer:
    return then_dispatched(answer(handler.lambda_handler(api_event("POST", "/jobs", body=body), FakeContext())))


class Media:
    """The reference video's host: answers byte ranges of `content` (or `status` for every request)."""

    def __init__(self) -> None:
        self.content = mp4(4.2)
        self.status = 206
        self.ranges: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        asked = request.headers.get("Range", "")
        self.ranges.append(asked)
        if self.status != 206:
            return httpx.Response(self.status, content=b"<html>nope</html>")
        found = _RANGE.fullmatch(asked)
        assert found, asked
        start, end = int(found.group(1)), min(int(found.group(2)), len(self.content) - 1)
        headers = {"Content-Range": f"bytes {start}-{end}/{len(self.content)}", "Content-Type": "video/mp4"}
        return httpx.Response(206, content=self.content[start : end + 1], headers=headers)


@pytest.fixture
def media() -> Media:
    return Media()


@pytest.fixture
def router(media: Media) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        for name, (url, answer_file) in SUBMIT.items():
            mocked.post(url, name=name).respond(200, json=json.loads((PROVIDER_ANSWERS / answer_file).read_text()))
        mocked.get(DANCE, name="media").mock(side_effect=media)
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


def sent(router: respx.MockRouter, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(router.routes[name].calls.last.request.content)
    return body


def asked(router: respx.MockRouter) -> list[str]:
    return [name for name in SUBMIT if router.routes[name].call_count]


def assert_422(result: HttpAnswer, field: str) -> dict[str, Any]:
    assert result.status == 422, result.body
    error: dict[str, Any] = result.body["error"]
    assert field in [detail["field"] for detail in error["details"]], error
    return error


def assert_nothing_recorded(cloud: Cloud, router: respx.MockRouter) -> None:
    assert cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"] == []
    assert asked(router) == []


# -- the mode's own rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"first_frame_url": CHARACTER}, "first_frame_url"),
        ({"duration": 10}, "duration"),
        ({"aspect_ratio": "9:16"}, "aspect_ratio"),
        ({"sound": True}, "sound"),
        ({"motion_control": {"image_url": CHARACTER}}, "motion_control.video_url"),
        ({"motion_control": motion(character_orientation="mirror")}, "motion_control.character_orientation"),
        ({"motion_control": motion(video_url="ftp://cdn.example.com/a.mp4")}, "motion_control.video_url"),
        ({"motion_control": motion(speed=2)}, "motion_control.speed"),
    ],
)
def test_what_motion_control_cannot_take_is_422_naming_the_field(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, extra: dict[str, Any], field: str
) -> None:
    assert_422(call({"motion_control": motion(), **extra}), field)
    assert_nothing_recorded(cloud, router)


def test_a_prompt_is_optional_with_motion_control_and_required_without(rt: Runtime, router: respx.MockRouter) -> None:
    assert call({"motion_control": motion()}).status == 202
    error = assert_422(call({"provider": "kie"}), "prompt")
    assert "optional only with motion_control" in error["details"][0]["message"]


@pytest.mark.parametrize("provider", ["vidgo", "pixwith"])
def test_providers_without_motion_control_refuse_it_naming_the_field(
    rt: Runtime, cloud: Cloud, router: respx.MockRouter, provider: str
) -> None:
    error = assert_422(call({"provider": provider, "motion_control": motion()}), "motion_control")
    assert {"field": "motion_control", "provider": provider, "rule": "does not offer motion control"} in error[
        "details"
    ]
    assert_nothing_recorded(cloud, router)


# -- routing and the providers' shapes --------------------------------------------------------------


def test_auto_routes_motion_control_to_the_first_provider_offering_it(rt: Runtime, router: respx.MockRouter) -> None:
    result = call({"prompt": "dances", "motion_control": motion(character_orientation="video")})

    assert result.status == 202, result.body
    assert asked(router) == ["kie"]
    body = sent(router, "kie")
    assert body["model"] == "kling-2.6/motion-control"
    assert body["input"] == {
        "prompt": "dances",
        "input_urls": [CHARACTER],
        "video_urls": [DANCE],
        "character_orientation": "video",
        "mode": "720p",
    }
    assert body["callBackUrl"].startswith("https://")


def test_auto_passes_over_a_provider_that_cannot_honour_a_motion_field(rt: Runtime, router: respx.MockRouter) -> None:
    result = call({"motion_control": motion(keep_original_sound=False), "quality": "pro"})

    assert result.status == 202, result.body
    assert asked(router) == ["aimlapi"]  # Kie has no sound field; AI/ML API is next in order and offers pro
    assert sent(router, "aimlapi") == {
        "model": "klingai/video-v2-6-pro-motion-control",
        "image_url": CHARACTER,
        "video_url": DANCE,
        "character_orientation": "image",
        "keep_audio": False,
    }


def test_apimart_gets_its_motion_model_tier_and_sound_choice(rt: Runtime, router: respx.MockRouter) -> None:
    result = call(
        {"provider": "apimart", "prompt": "waves", "quality": "pro", "motion_control": motion(keep_original_sound=True)}
    )

    assert result.status == 202, result.body
    assert sent(router, "apimart") == {
        "model": "kling-v2-6-motion-control",
        "prompt": "waves",
        "image_url": CHARACTER,
        "video_url": DANCE,
        "character_orientation": "image",
        "mode": "pro",
        "keep_original_sound": "yes",
    }


# -- the reference video's length -------------------------------------------------------------------


def test_the_reference_length_is_read_kept_on_the_request_and_priced(
    rt: Runtime, router: respx.MockRouter, media: Media
) -> None:
    result = call({"provider": "kie", "quality": "pro", "motion_control": motion()})

    assert result.status == 202, result.body
    assert result.body["request"]["motion_control"]["video_seconds"] == 4.2
    assert (result.body["cost"]["amount"], result.body["cost"]["estimated"]) == (5 * 18, True)
    assert "5 s (the reference video's length)" in result.body["cost"]["basis"]
    assert media.ranges == ["bytes=0-65535"]  # one small read, never the whole video


@pytest.mark.parametrize(
    ("seconds", "orientation", "accepted"),
    [(2.5, "image", False), (3.0, "image", True), (10.0, "image", True), (12.0, "image", False), (12.0, "video", True)],
)
def test_a_reference_outside_the_length_rule_is_422_before_anything_is_paid_for(
    rt: Runtime,
    cloud: Cloud,
    router: respx.MockRouter,
    media: Media,
    seconds: float,
    orientation: str,
    accepted: bool,
) -> None:
    media.content = mp4(seconds, moov_first=False, media_bytes=200_000)
    result = call({"motion_control": motion(character_orientation=orientation)})

    if accepted:
        assert result.status == 202, result.body
        assert result.body["request"]["motion_control"]["video_seconds"] == seconds
        return
    error = assert_422(result, "motion_control.video_url")
    assert f"is {seconds:g} s" in error["message"]
    assert_nothing_recorded(cloud, router)
    assert len(media.ranges) == 2  # the header at the start, then the moov box after the media


@pytest.mark.parametrize("status", [404, 403, 200])
def test_a_reference_the_relay_cannot_read_is_left_to_the_provider_at_its_longest_price(
    rt: Runtime, router: respx.MockRouter, media: Media, status: int
) -> None:
    media.status = status
    result = call({"provider": "kie", "motion_control": motion(character_orientation="video")})

    assert result.status == 202, result.body
    assert result.body["request"]["motion_control"]["video_seconds"] is None
    assert result.body["cost"]["amount"] == 30 * 11
    assert "at most 30 s" in result.body["cost"]["basis"]


def test_a_length_sent_by_the_app_is_replaced_by_the_measured_one(rt: Runtime, router: respx.MockRouter) -> None:
    result = call({"provider": "kie", "motion_control": motion(video_seconds=1)})
    assert result.status == 202, result.body
    assert result.body["request"]["motion_control"]["video_seconds"] == 4.2


def test_a_retry_with_the_same_key_is_a_replay_whatever_was_measured(
    rt: Runtime, router: respx.MockRouter, media: Media
) -> None:
    body = {"motion_control": motion()}
    headers = {"Idempotency-Key": "dance-1"}
    first = then_dispatched(
        answer(handler.lambda_handler(api_event("POST", "/jobs", body=body, headers=headers), FakeContext()))
    )
    media.status = 503
    again = answer(handler.lambda_handler(api_event("POST", "/jobs", body=body, headers=headers), FakeContext()))

    assert (first.status, again.status) == (202, 202)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body["id"] == first.body["id"]


def test_an_unsafe_reference_url_is_refused_naming_it(rt: Runtime, cloud: Cloud, router: respx.MockRouter) -> None:
    result = call({"motion_control": motion(video_url="https://169.254.169.254/latest/meta-data/")})
    assert result.status == 422, result.body
    assert result.body["error"]["code"] == "unsafe_url"
    assert result.body["error"]["details"]["field"] == "motion_control.video_url"
    assert_nothing_recorded(cloud, router)
