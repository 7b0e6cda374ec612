"""AI/ML API (api.aimlapi.com): Kling 2.6 Pro behind a flat body, Bearer auth, polling only.

Create: `POST /v2/video/generations`, answer `{"id", "status"}`. Status:
`GET /v2/video/generations?generation_id=<id>`, answer `{"id", "status", "video": {"url"}, "error",
"meta": {"usage": {"credits_used"}}}`. Errors are plain HTTP codes with a JSON body
`{message, path, requestId, statusCode, timestamp}`; 403 means the key may not do this (e.g. no credits).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.models.common import ProviderName
from shared.models.request import JobRequest
from shared.providers.base import Provider, ProviderState, SubmitResult, TaskStatus
from shared.providers.capabilities import Capabilities, MotionCapabilities
from shared.providers.parsing import Lenient, first_error

TEXT_TO_VIDEO_MODEL = "klingai/video-v2-6-pro-text-to-video"
IMAGE_TO_VIDEO_MODEL = "klingai/video-v2-6-pro-image-to-video"
MOTION_CONTROL_MODEL = "klingai/video-v2-6-pro-motion-control"
GENERATIONS_PATH = "/v2/video/generations"
DEFAULT_ASPECT_RATIO = "16:9"

# The schema's enum, the in-progress values of the docs' own polling sample, and "succeeded" from the
# Kling 2.6 Pro image-to-video page's sample output.
STATES: dict[str, ProviderState] = {
    "queued": ProviderState.QUEUED,
    "waiting": ProviderState.QUEUED,
    "generating": ProviderState.RUNNING,
    "active": ProviderState.RUNNING,
    "completed": ProviderState.SUCCEEDED,
    "succeeded": ProviderState.SUCCEEDED,
    "error": ProviderState.FAILED,
}
# The docs' polling sample keeps polling only while the status is one of these; any other status is the
# end of the generation, read from what the answer carries (a video: success; an error: failure).
IN_PROGRESS = frozenset({"queued", "waiting", "generating", "active"})
assert STATES.keys() >= IN_PROGRESS


class _Link(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None


class _Failure(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Lenient[str] = None
    message: Lenient[str] = None


class _Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    credits_used: Lenient[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    usage: Lenient[_Usage] = None


class _Generation(BaseModel):
    """Both the create and the fetch answer (the create answer only fills `id` and `status`)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(default=None, min_length=1)
    status: str | None = None
    video: _Link | None = None
    data: list[_Link] | None = None
    error: Lenient[_Failure | str] = None
    meta: Lenient[_Meta] = None
    # The documented error body, should it ever arrive with a 2xx status.
    message: Lenient[str] = None
    status_code: Lenient[int] = Field(default=None, alias="statusCode")


CAPABILITIES = Capabilities(
    provider="aimlapi",
    durations=(5, 10),
    aspect_ratios=("16:9", "9:16", "1:1"),
    aspect_ratio_with_image=False,
    sound=True,
    qualities=("pro",),
    default_quality="pro",
    first_frame=True,
    last_frame=False,
    negative_prompt=True,
    cfg_scale=True,
    cfg_scale_with_image=False,
    max_outputs=1,
    max_prompt_chars=2500,
    prompt_optimization=False,
    watermark=False,
    callbacks=False,
    motion_control=MotionCapabilities(
        model=MOTION_CONTROL_MODEL,
        qualities=("pro",),
        default_quality="pro",
        keep_original_sound=True,
        max_prompt_chars=2500,
        billing="no price published; the credits used are reported when the job ends",
    ),
    notes=(
        "Only the Pro tier of Kling 2.6 is documented; a std tier appears only in third-party code.",
        "The final status may read 'completed' (video.url) or 'succeeded' (data[0].url); both are accepted.",
        "No callbacks: completion is found by polling. No price or rate limits are published.",
    ),
)


class AimlapiProvider(Provider):
    name: ClassVar[ProviderName] = "aimlapi"
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        self.require_supported(request)
        if request.motion_control is not None:
            return self._build_motion_control(request)
        body: dict[str, Any] = {"prompt": request.prompt, "duration": request.duration}
        if request.first_frame_url is None:
            body["model"] = TEXT_TO_VIDEO_MODEL
            body["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO
            if request.cfg_scale is not None:
                body["cfg_scale"] = request.cfg_scale
        else:
            body["model"] = IMAGE_TO_VIDEO_MODEL
            body["image_url"] = str(request.first_frame_url)
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        # Their default is true; ours is false, so the choice is always spelled out.
        body["generate_audio"] = request.sound
        return self.json_request("POST", GENERATIONS_PATH, body=body)

    def _build_motion_control(self, request: JobRequest) -> httpx.Request:
        motion = request.motion_control
        assert motion is not None
        body: dict[str, Any] = {"model": MOTION_CONTROL_MODEL}
        if request.prompt:
            body["prompt"] = request.prompt
        body["image_url"] = str(motion.image_url)
        body["video_url"] = str(motion.video_url)
        body["character_orientation"] = motion.character_orientation
        if motion.keep_original_sound is not None:
            body["keep_audio"] = motion.keep_original_sound
        return self.json_request("POST", GENERATIONS_PATH, body=body)

    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        answer = self._read(response)
        self._raise_error_body(answer, response)
        if answer.id is None:
            failure = answer.error
            if isinstance(failure, _Failure):
                raise self.envelope_error(failure.name or "error", failure.message, response)
            if isinstance(failure, str):
                raise self.envelope_error("error", failure, response)
            raise self.malformed("no generation id in the create answer", response)
        return SubmitResult(task_id=answer.id, raw_status=answer.status)

    def build_status(self, task_id: str) -> httpx.Request:
        if not task_id:
            raise ValueError(f"{self.name}: a generation id is required")
        return self.json_request("GET", GENERATIONS_PATH, params={"generation_id": task_id})

    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        answer = self._read(response)
        self._raise_error_body(answer, response)
        task_id = self.answered_task_id(answer.id, task_id, response)
        if answer.status is None:
            raise self.malformed("no status in the status answer", response)
        error_code, error_message = _failure_details(answer.error)
        usage = answer.meta.usage if answer.meta is not None else None
        urls = _result_urls(answer)
        return TaskStatus(
            task_id=task_id,
            state=_state(answer.status, urls, error_message or error_code),
            raw_status=answer.status,
            result_urls=urls,
            error_code=error_code,
            error_message=error_message,
            credits_used=usage.credits_used if usage is not None else None,
        )

    def _read(self, response: httpx.Response) -> _Generation:
        try:
            return _Generation.model_validate(self.read_json(response))
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc

    def _raise_error_body(self, answer: _Generation, response: httpx.Response) -> None:
        if answer.status_code is not None and answer.status_code >= 400:
            raise self.envelope_error(answer.status_code, answer.message, response)


def _state(raw: str, urls: tuple[str, ...], failure: str | None) -> ProviderState:
    status = raw.strip().lower()
    if status in STATES:
        return STATES[status]
    # Another status ends the generation (the docs' sample stops polling on it): its content says how.
    if urls:
        return ProviderState.SUCCEEDED
    if failure:
        return ProviderState.FAILED
    return ProviderState.UNKNOWN


def _result_urls(answer: _Generation) -> tuple[str, ...]:
    if answer.video is not None and answer.video.url:
        return (answer.video.url,)
    return tuple(item.url for item in answer.data or () if item.url)


def _failure_details(failure: _Failure | str | None) -> tuple[str | None, str | None]:
    if isinstance(failure, _Failure):
        return failure.name, failure.message
    return None, failure
