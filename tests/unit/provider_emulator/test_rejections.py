"""What each provider refuses, answered in that provider's own error style."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.provider_emulator.helpers import PROVIDERS, ProviderClient, valid_body


def assert_provider_error(provider: str, response, status: int, fragment: str = "") -> None:
    """The provider's documented (or emulated) error style, naming the problem."""
    body = response.json()
    if provider == "pixwith":
        assert response.status_code == 200
        assert body["code"] == 0
        message = body["message"]
    elif provider == "kie":
        assert response.status_code == status
        assert body["code"] == status
        message = body["msg"]
    elif provider == "vidgo":
        assert response.status_code == status
        assert body["code"] == status
        message = body["message"]
    elif provider == "aimlapi":
        assert response.status_code == status
        assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
        assert body["statusCode"] == status
        message = body["message"]
    else:
        assert response.status_code == status
        assert body["code"] == status
        message = body["error"]["message"]
    assert fragment in message, message


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("headers", [{}, "wrong-key", "bearer-for-pixwith"])
def test_bad_or_missing_auth_is_refused(clients, provider, headers):
    client: ProviderClient = clients[provider]
    if headers == "wrong-key":
        headers = client.auth("not-the-key")
    elif headers == "bearer-for-pixwith":
        # Pixwith reads only Api-Key; everyone else gets Api-Key, which they do not read.
        key = client.emulator.api_key(provider)
        headers = {"Authorization": f"Bearer {key}"} if provider == "pixwith" else {"Api-Key": key}
    response = client.submit(valid_body(provider), headers=headers)
    if provider == "pixwith":
        assert response.status_code == 200
        assert response.json() == {"code": 0, "message": "Invalid API KEY", "data": None}
    else:
        assert_provider_error(provider, response, 401)
    assert client.emulator.tasks(provider) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_needs_auth_too(clients, provider):
    client: ProviderClient = clients[provider]
    task_id = client.submit_ok()
    response = client.status(task_id, headers=client.auth("not-the-key"))
    assert_provider_error(provider, response, 401)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_task_is_not_found(clients, provider):
    client: ProviderClient = clients[provider]
    response = client.status("task-that-does-not-exist")
    if provider == "pixwith":
        assert response.json() == {"code": 0, "message": "Task not found", "data": None}
    else:
        assert_provider_error(provider, response, 404, "not found")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_task_is_only_known_to_its_own_provider(clients, provider):
    other = "kie" if provider != "kie" else "vidgo"
    task_id = clients[other].submit_ok()
    response = clients[provider].status(task_id)
    if provider == "pixwith":
        assert response.json()["code"] == 0
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("provider", PROVIDERS)
def test_body_that_is_not_json_is_refused(clients, provider):
    client: ProviderClient = clients[provider]
    response = client.http.post(
        client.base
        + {
            "vidgo": "/api/generate/submit",
            "kie": "/api/v1/jobs/createTask",
            "aimlapi": "/v2/video/generations",
            "pixwith": "/api/task/create",
            "apimart": "/v1/videos/generations",
        }[provider],
        content=b"{not json",
        headers={**client.auth(), "Content-Type": "application/json"},
    )
    status = {"kie": 422, "pixwith": 0}.get(provider, 400)
    assert_provider_error(provider, response, status, "not valid JSON")


def mutate(provider: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(valid_body(provider))
    change(body)
    return body


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for each in changes:
            each(body)

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node = body
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node = body
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        del node[last]

    return change


IMAGE = "https://example.com/frame.png"

CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], int, str]] = [
    # Vidgo
    ("vidgo-model", "vidgo", _set("model", "kling-2.5"), 400, "model must be one of kling-2.6"),
    ("vidgo-input", "vidgo", _drop("input"), 400, "input is required"),
    ("vidgo-prompt", "vidgo", _drop("input.prompt"), 400, "input.prompt is required"),
    ("vidgo-duration", "vidgo", _set("input.duration", 7), 400, "input.duration must be one of 5, 10"),
    ("vidgo-duration-type", "vidgo", _set("input.duration", "5"), 400, "input.duration must be an integer"),
    ("vidgo-sound-type", "vidgo", _set("input.sound", "yes"), 400, "input.sound must be a boolean"),
    ("vidgo-ratio", "vidgo", _set("input.aspect_ratio", "4:3"), 400, "input.aspect_ratio must be one of"),
    ("vidgo-callback-spelling", "vidgo", _set("callbackUrl", "https://x.test/cb"), 400, "callbackUrl is not"),
    ("vidgo-callback-url", "vidgo", _set("callback_url", "not a url"), 400, "callback_url must be an absolute"),
    ("vidgo-two-images", "vidgo", _set("input.image_urls", [IMAGE, IMAGE]), 400, "input.image_urls must hold 1"),
    # Kie
    ("kie-model", "kie", _set("model", "kling-2.6"), 422, "model must be one of"),
    ("kie-duration-int", "kie", _set("input.duration", 5), 422, "input.duration must be a string"),
    ("kie-duration-value", "kie", _set("input.duration", "7"), 422, "input.duration must be one of 5, 10"),
    ("kie-prompt-long", "kie", _set("input.prompt", "x" * 1001), 422, "maximum is 1000"),
    ("kie-sound-missing", "kie", _drop("input.sound"), 422, "input.sound is required"),
    ("kie-ratio-missing", "kie", _drop("input.aspect_ratio"), 422, "input.aspect_ratio is required"),
    ("kie-callback-spelling", "kie", _set("callbackUrl", "https://x.test/cb"), 422, "callbackUrl is not"),
    ("kie-negative", "kie", _set("input.negative_prompt", "blur"), 422, "input.negative_prompt is not"),
    (
        "kie-i2v-no-image",
        "kie",
        _set("model", "kling-2.6/image-to-video"),
        422,
        "input.aspect_ratio is not an accepted field for kling-2.6/image-to-video",
    ),
    # AI/ML
    ("aiml-model", "aimlapi", _set("model", "klingai/video-v2-6-text-to-video"), 400, "model must be one of"),
    ("aiml-prompt-long", "aimlapi", _set("prompt", "x" * 2501), 400, "maximum is 2500"),
    ("aiml-prompt-missing", "aimlapi", _drop("prompt"), 400, "prompt is required"),
    ("aiml-duration-str", "aimlapi", _set("duration", "5"), 400, "duration must be an integer"),
    ("aiml-cfg", "aimlapi", _set("cfg_scale", 1.5), 400, "cfg_scale must be between 0.0 and 1.0"),
    ("aiml-audio-type", "aimlapi", _set("generate_audio", 1), 400, "generate_audio must be a boolean"),
    ("aiml-provider", "aimlapi", _set("provider", "runway"), 400, "provider must be one of"),
    ("aiml-image-on-t2v", "aimlapi", _set("image_url", IMAGE), 400, "image_url is not an accepted field"),
    # Pixwith
    ("pix-model", "pixwith", _set("model_id", "2-32"), 0, "Invalid model_id"),
    ("pix-model-missing", "pixwith", _drop("model_id"), 0, "model_id is required"),
    ("pix-options", "pixwith", _drop("options"), 0, "options is required"),
    ("pix-images", "pixwith", _set("image_urls", [IMAGE, IMAGE]), 0, "image_urls must hold 1"),
    ("pix-duration-str", "pixwith", _set("options.duration", "5"), 0, "options.duration must be an integer"),
    ("pix-sound-missing", "pixwith", _drop("options.sound"), 0, "options.sound is required"),
    ("pix-optimization", "pixwith", _drop("options.prompt_optimization"), 0, "prompt_optimization is required"),
    ("pix-outputs", "pixwith", _set("options.num_outputs", 5), 0, "options.num_outputs must be at most 4"),
    # APIMart
    ("apimart-model", "apimart", _set("model", "kling-v2-5"), 400, "model must be one of kling-v2-6"),
    ("apimart-prompt-long", "apimart", _set("prompt", "x" * 2501), 400, "maximum is 2500"),
    ("apimart-duration-str", "apimart", _set("duration", "5"), 400, "duration must be an integer"),
    ("apimart-mode", "apimart", _set("mode", "master"), 400, "mode must be one of std, pro"),
    ("apimart-audio-std", "apimart", _set("mode", "std"), 400, 'audio requires mode "pro"'),
    (
        "apimart-audio-false-std",
        "apimart",
        _both(_set("mode", "std"), _set("audio", False)),
        400,
        'requires mode "pro"',
    ),
    ("apimart-three-images", "apimart", _set("image_urls", [IMAGE] * 3), 400, "image_urls must hold 1 to 2"),
]


@pytest.mark.parametrize(
    ("provider", "change", "status", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_submit_is_refused(clients, provider, change, status, fragment):
    client: ProviderClient = clients[provider]
    response = client.submit(mutate(provider, change))
    assert_provider_error(provider, response, status, fragment)
    assert client.emulator.tasks(provider) == []
    assert client.emulator.stats()[provider].submits_rejected == 1


def test_apimart_last_frame_needs_pro(clients):
    body = {"model": "kling-v2-6", "prompt": "dawn to dusk", "image_urls": [IMAGE, IMAGE]}
    assert_provider_error("apimart", clients["apimart"].submit(body), 400, 'requires mode "pro"')


def test_apimart_pro_last_frame_and_audio_are_exclusive(clients):
    body = {"model": "kling-v2-6", "prompt": "dawn to dusk", "mode": "pro", "image_urls": [IMAGE, IMAGE], "audio": True}
    assert_provider_error("apimart", clients["apimart"].submit(body), 400, "cannot be used together")


def test_apimart_status_language_must_be_known(clients):
    client = clients["apimart"]
    task_id = client.submit_ok()
    response = client.http.get(f"{client.base}/v1/tasks/{task_id}", params={"language": "fr"}, headers=client.auth())
    assert_provider_error("apimart", response, 400, "language must be one of")


def test_kie_image_to_video_takes_exactly_one_image(clients):
    body: dict[str, Any] = {
        "model": "kling-2.6/image-to-video",
        "input": {"prompt": "p", "image_urls": [IMAGE, IMAGE], "sound": False, "duration": "5"},
    }
    assert_provider_error("kie", clients["kie"].submit(body), 422, "input.image_urls must hold 1")
    del body["input"]["image_urls"]
    assert_provider_error("kie", clients["kie"].submit(body), 422, "input.image_urls is required")


def test_kie_prompt_of_exactly_1000_characters_is_accepted(clients):
    response = clients["kie"].submit(valid_body("kie", prompt="y" * 1000))
    assert response.status_code == 200


def test_kie_status_without_task_id(clients):
    client = clients["kie"]
    response = client.http.get(f"{client.base}/api/v1/jobs/recordInfo", headers=client.auth())
    assert_provider_error("kie", response, 422, "taskId query parameter is required")


def test_aimlapi_image_to_video_needs_an_image_and_takes_base64(clients):
    client = clients["aimlapi"]
    body = {"model": "klingai/video-v2-6-pro-image-to-video", "prompt": "p"}
    assert_provider_error("aimlapi", client.submit(body), 400, "image_url is required")
    body["image_url"] = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    assert client.submit(body).status_code == 200
    body["image_url"] = "ftp://example.com/a.png"
    assert_provider_error("aimlapi", client.submit(body), 400, "image_url must be an http(s) URL or a Base64")


def test_aimlapi_image_to_video_has_no_aspect_ratio(clients):
    body = {"model": "klingai/video-v2-6-pro-image-to-video", "prompt": "p", "image_url": IMAGE, "aspect_ratio": "16:9"}
    assert_provider_error("aimlapi", clients["aimlapi"].submit(body), 400, "aspect_ratio is not an accepted field")


def test_pixwith_status_needs_a_task_id(clients):
    client = clients["pixwith"]
    response = client.http.post(f"{client.base}/api/task/get", json={}, headers=client.auth())
    assert response.json() == {"code": 0, "message": "task_id is required", "data": None}


def test_unknown_routes(clients, http, emulator):
    client = clients["kie"]
    response = client.http.get(f"{client.base}/api/v1/jobs/createTask", headers=client.auth())
    assert response.status_code == 404
    assert http.get(f"{emulator.base_url}/nope/x").status_code == 404


def test_null_optional_fields_count_as_absent(clients):
    body = valid_body("vidgo")
    body["callback_url"] = None
    body["input"]["sound"] = None
    assert clients["vidgo"].submit(body).status_code == 200
