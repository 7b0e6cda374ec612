"""The APIMart-style API (APIMart and its white-label copies): model "kling-v2-6", Bearer auth, polling only.

Create: `POST /v1/videos/generations` with a flat body, answer
`{"code": 200, "data": [{"status": "submitted", "task_id"}]}` (`data` is an array). Status:
`GET /v1/tasks/{task_id}`, answer `{"code": 200, "data": {"id", "status", "progress",
"result": {"videos": [{"url", "expires_at"}]}, "error"}}` where `url` is a string or a list of strings (the
shared task page's example puts results under `result.images` instead; both are read). A body `code` other
than 200 is an error, classified like the HTTP status of the same number; an `error` that carries neither a
message nor a code is not one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.models.common import ProviderName
from shared.models.request import JobRequest
from shared.providers.base import Provider, ProviderState, SubmitResult, TaskStatus, clamp_progress
from shared.providers.capabilities import Capabilities, MotionCapabilities
from shared.providers.parsing import Lenient, first_error

MODEL = "kling-v2-6"
MOTION_CONTROL_MODEL = "kling-v2-6-motion-control"
CREATE_PATH = "/v1/videos/generations"
TASKS_PATH = "/v1/tasks/"
DEFAULT_ASPECT_RATIO = "16:9"
SUCCESS_CODE = 200
# 9999-12-31T23:59:59Z: anything later is not an epoch-seconds expiry.
LATEST_EPOCH_SECONDS = 253_402_300_799

STATES: dict[str, ProviderState] = {
    "submitted": ProviderState.QUEUED,
    "pending": ProviderState.QUEUED,
    "processing": ProviderState.RUNNING,
    "completed": ProviderState.SUCCEEDED,
    "failed": ProviderState.FAILED,
    "cancelled": ProviderState.CANCELED,
    "canceled": ProviderState.CANCELED,
}


class _Failure(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: Lenient[int | str] = None
    message: Lenient[str] = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int | str | None = None
    message: Lenient[str] = None
    msg: Lenient[str] = None
    error: Lenient[_Failure | str] = None
    data: Any = None

    @property
    def failed(self) -> bool:
        # An `error` counts only when it says something: `{}`, `""` or `null` beside a good answer are not errors.
        return (self.code is not None and str(self.code).strip() != str(SUCCESS_CODE)) or _says_something(self.error)

    @property
    def text(self) -> str | None:
        if isinstance(self.error, _Failure) and self.error.message:
            return self.error.message
        if isinstance(self.error, str) and self.error:
            return self.error
        return self.message or self.msg


class _Submitted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str = Field(min_length=1)
    status: Lenient[str] = None


class _Video(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | list[str] | None = None
    expires_at: Lenient[Annotated[float, Field(ge=0, le=LATEST_EPOCH_SECONDS)]] = None


class _Result(BaseModel):
    """The documented video answer fills `videos`; the docs' shared task example fills `images`."""

    model_config = ConfigDict(extra="ignore")

    videos: list[_Video] | None = None
    images: list[_Video] | None = None

    @property
    def items(self) -> list[_Video]:
        return [*(self.videos or ()), *(self.images or ())]


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(default=None, min_length=1)
    status: str
    progress: Lenient[Annotated[float, Field(allow_inf_nan=False)]] = None
    result: _Result | None = None
    error: Lenient[_Failure | str] = None


CAPABILITIES = Capabilities(
    provider="apimart",
    durations=(5, 10),
    aspect_ratios=("16:9", "9:16", "1:1"),
    aspect_ratio_with_image=True,
    sound=True,
    sound_requires_pro=True,
    qualities=("std", "pro"),
    default_quality="std",
    first_frame=True,
    last_frame=True,
    last_frame_requires_pro=True,
    last_frame_excludes_sound=True,
    negative_prompt=True,
    cfg_scale=False,
    max_outputs=1,
    max_prompt_chars=2500,
    prompt_optimization=False,
    watermark=True,
    callbacks=False,
    motion_control=MotionCapabilities(
        model=MOTION_CONTROL_MODEL,
        qualities=("std", "pro"),
        default_quality="std",
        keep_original_sound=True,
        max_prompt_chars=2500,
        billing="per second of the reference video, as APIMart measures it; no price published",
    ),
    notes=(
        "std is 720p and silent; pro is 1080p and may generate audio.",
        "With a first frame the image's own ratio may override aspect_ratio.",
        "No callbacks are documented: completion is found by polling. Result links expire (expires_at, ~24 h).",
        "Error codes, rate limits and prices are not documented; a white-label host's base URL must be set.",
    ),
)


class ApimartProvider(Provider):
    name: ClassVar[ProviderName] = "apimart"
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        self.require_supported(request)
        if request.motion_control is not None:
            return self._build_motion_control(request)
        body: dict[str, Any] = {
            "model": MODEL,
            "prompt": request.prompt,
            "mode": self.capabilities.quality_for(request),
            "duration": request.duration,
        }
        if request.first_frame_url is None:
            body["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO
        else:
            if request.aspect_ratio is not None:
                body["aspect_ratio"] = request.aspect_ratio
            images = [str(request.first_frame_url)]
            if request.last_frame_url is not None:
                images.append(str(request.last_frame_url))
            body["image_urls"] = images
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if body["mode"] == "pro":  # the audio parameter needs pro; std is silent and takes no audio field
            body["audio"] = request.sound
        if request.watermark is not None:
            body["watermark"] = request.watermark
        return self.json_request("POST", CREATE_PATH, body=body)

    def _build_motion_control(self, request: JobRequest) -> httpx.Request:
        motion = request.motion_control
        assert motion is not None
        body: dict[str, Any] = {"model": MOTION_CONTROL_MODEL}
        if request.prompt:
            body["prompt"] = request.prompt
        body["image_url"] = str(motion.image_url)
        body["video_url"] = str(motion.video_url)
        body["character_orientation"] = motion.character_orientation
        body["mode"] = self.capabilities.quality_for(request)
        if motion.keep_original_sound is not None:
            body["keep_original_sound"] = "yes" if motion.keep_original_sound else "no"
        return self.json_request("POST", CREATE_PATH, body=body)

    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        data = self._data(response)
        # Documented as an array of one; a bare object is read the same way.
        first = data[0] if isinstance(data, list) and data else data
        if not isinstance(first, dict):
            raise self.malformed("no task in the create answer's data", response)
        try:
            submitted = _Submitted.model_validate(first)
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        return SubmitResult(task_id=submitted.task_id, raw_status=submitted.status)

    def build_status(self, task_id: str) -> httpx.Request:
        if not task_id:
            raise ValueError(f"{self.name}: a task id is required")
        return self.json_request("GET", TASKS_PATH + quote(task_id, safe=""))

    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        data = self._data(response)
        try:
            task = _Task.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        task_id = self.answered_task_id(task.id, task_id, response)
        videos = task.result.items if task.result is not None else None
        error_code, error_message = _failure_details(task.error)
        return TaskStatus(
            task_id=task_id,
            state=STATES.get(task.status.strip().lower(), ProviderState.UNKNOWN),
            raw_status=task.status,
            progress=clamp_progress(task.progress),
            result_urls=_result_urls(videos or []),
            error_code=error_code,
            error_message=error_message,
            result_expires_at=_earliest_expiry(videos or []),
        )

    def _data(self, response: httpx.Response) -> Any:
        """The `data` of a successful envelope; the envelope's error otherwise."""
        try:
            envelope = _Envelope.model_validate(self.read_json(response))
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        if envelope.failed:
            code = envelope.code
            if code is None and isinstance(envelope.error, _Failure):
                code = envelope.error.code
            raise self.envelope_error(code if code is not None else "error", envelope.text, response)
        if envelope.data is None:
            raise self.malformed("no data in a successful answer", response)
        return envelope.data


def _result_urls(videos: list[_Video]) -> tuple[str, ...]:
    urls: list[str] = []
    for video in videos:
        found = [video.url] if isinstance(video.url, str) else video.url or []
        urls.extend(url for url in found if url and url not in urls)
    return tuple(urls)


def _earliest_expiry(videos: list[_Video]) -> datetime | None:
    moments = [video.expires_at for video in videos if video.expires_at is not None]
    return datetime.fromtimestamp(min(moments), tz=UTC) if moments else None


def _says_something(failure: _Failure | str | None) -> bool:
    if isinstance(failure, _Failure):
        return bool(failure.message) or failure.code not in (None, "")
    return bool(failure and failure.strip())


def _failure_details(failure: _Failure | str | None) -> tuple[str | None, str | None]:
    if isinstance(failure, _Failure):
        code = str(failure.code) if failure.code not in (None, "") else None
        return code, failure.message or None
    return None, (failure.strip() or None) if failure else None
