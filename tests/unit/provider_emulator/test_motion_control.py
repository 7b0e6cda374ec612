"""Motion control on the three emulated providers that offer it: documented fields only, the reference
video's length rule, and a finished task that downloads like any other."""

from __future__ import annotations

from typing import Any

import pytest

from local.provider_emulator import ProviderEmulator, validation
from local.provider_emulator.validation import Rejection, check_reference_video
from tests.unit.provider_emulator.helpers import ProviderClient


def motion_body(emulator: ProviderEmulator, provider: str, **changes: Any) -> dict[str, Any]:
    image, video = emulator.asset_url("first.png"), emulator.asset_url("motion.mp4")
    body: dict[str, Any] = {
        "kie": {
            "model": "kling-2.6/motion-control",
            "input": {"input_urls": [image], "video_urls": [video], "character_orientation": "image", "mode": "720p"},
        },
        "aimlapi": {"model": "klingai/video-v2-6-pro-motion-control", "image_url": image, "video_url": video},
        "apimart": {
            "model": "kling-v2-6-motion-control",
            "image_url": image,
            "video_url": video,
            "character_orientation": "video",
            "mode": "pro",
            "keep_original_sound": "no",
        },
    }[provider]
    target = body["input"] if provider == "kie" else body
    target.update(changes)
    return body


@pytest.mark.parametrize("provider", ["kie", "aimlapi", "apimart"])
def test_a_motion_control_task_runs_to_a_downloadable_video(
    clients: dict[str, ProviderClient], emulator: ProviderEmulator, http: Any, provider: str
) -> None:
    client = clients[provider]
    answer = client.submit(motion_body(emulator, provider, prompt="the character dances"))
    assert answer.status_code == 200, answer.text
    task_id = client.task_id(answer.json())
    done = client.wait_terminal(task_id)
    (url,) = client.result_urls(done)
    assert http.get(url).content[4:8] == b"ftyp"
    assert emulator.task(task_id).submitted == motion_body(emulator, provider, prompt="the character dances")


@pytest.mark.parametrize(
    ("provider", "changes", "status", "message"),
    [
        ("kie", {"mode": "std"}, 422, "input.mode must be one of 720p, 1080p"),
        ("kie", {"character_orientation": None}, 422, "input.character_orientation is required"),
        ("kie", {"video_urls": []}, 422, "input.video_urls must hold 1 URL(s)"),
        ("kie", {"keep_original_sound": True}, 422, "input.keep_original_sound is not an accepted field"),
        ("kie", {"prompt": "p" * 2501}, 422, "maximum is 2500"),
        ("aimlapi", {"video_url": None}, 400, "video_url is required"),
        ("aimlapi", {"keep_audio": "yes"}, 400, "keep_audio must be a boolean"),
        ("aimlapi", {"duration": 5}, 400, "duration is not an accepted field"),
        ("apimart", {"keep_original_sound": True}, 400, "keep_original_sound must be a string"),
        ("apimart", {"character_orientation": None}, 400, "character_orientation is required"),
        ("apimart", {"watermark": False}, 400, "watermark is not an accepted field"),
    ],
)
def test_motion_control_bodies_are_validated_strictly(
    clients: dict[str, ProviderClient],
    emulator: ProviderEmulator,
    provider: str,
    changes: dict[str, Any],
    status: int,
    message: str,
) -> None:
    answer = clients[provider].submit(motion_body(emulator, provider, **changes))
    assert answer.status_code == status, answer.text
    assert message in answer.text


@pytest.mark.parametrize("provider", ["vidgo", "pixwith"])
def test_providers_without_motion_control_refuse_its_fields(
    clients: dict[str, ProviderClient], emulator: ProviderEmulator, provider: str
) -> None:
    body = motion_body(emulator, "kie")
    answer = clients[provider].submit(body)
    assert answer.status_code in (200, 400, 422), answer.text
    assert answer.json().get("code") not in (1, 200), answer.text


def test_the_reference_length_rule_is_the_documented_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_reference_video("https://x.example/assets/motion.mp4", "image") == 4
    assert check_reference_video("https://elsewhere.example/dance.mp4", "image") == validation.ASSUMED_REFERENCE_SECONDS
    monkeypatch.setattr(validation, "video_seconds", lambda name: 12.0)
    assert check_reference_video("https://x.example/assets/motion.mp4", "video") == 12
    with pytest.raises(
        Rejection, match="the reference video is 12 s; with character_orientation 'image' it must be 3-10 s"
    ):
        check_reference_video("https://x.example/assets/motion.mp4", "image")
