"""Vidgo (api.vidgo.ai): one `kling-2.6` model for text- and image-to-video, unsigned callbacks.

The callback body has the status answer's shape and carries no signature, so it is only a hint:
the caller re-reads the status with our API key before trusting any `file_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import CallbackRejectedError
from shared.models.common import AspectRatio, ProviderName
from shared.models.request import JobRequest
from shared.providers.base import Provider, ProviderState, SubmitResult, TaskStatus, clamp_progress, error_text
from shared.providers.capabilities import Capabilities
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.parsing import first_error, load_callback_json

MODEL = "kling-2.6"
SUBMIT_PATH = "/api/generate/submit"
STATUS_PATH = "/api/generate/status/"
SUCCESS_CODE = "200"
DEFAULT_ASPECT_RATIO: AspectRatio = "16:9"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv")

STATES: dict[str, ProviderState] = {
    "not_started": ProviderState.QUEUED,
    "running": ProviderState.RUNNING,
    "finished": ProviderState.SUCCEEDED,
    "failed": ProviderState.FAILED,
}

CAPABILITIES = Capabilities(
    provider="vidgo",
    durations=(5, 10),
    aspect_ratios=("1:1", "16:9", "9:16"),
    aspect_ratio_with_image=False,
    sound=True,
    qualities=(),
    text_to_video=True,
    first_frame=True,
    last_frame=False,
    negative_prompt=False,
    cfg_scale=False,
    max_outputs=1,
    # Vidgo states no prompt limit; ours applies.
    max_prompt_chars=2500,
    prompt_optimization=False,
    watermark=False,
    callbacks=True,
    signed_callbacks=False,
    notes=(
        "The image-to-video field input.image_urls is not in Vidgo's kling-2.6 page; Vidgo's own "
        "kling-2.6-motion-control page passes its image as input.image_urls, as its API family does for other "
        "models (still unconfirmed for kling-2.6).",
        "Image-to-video takes the first frame's aspect ratio; whether input.aspect_ratio applies there is "
        "not documented.",
        "Prompt length limit, result URL lifetime and price are not documented.",
        "Callbacks are unsigned; the task status is re-read before a result is trusted.",
    ),
)


class VidgoFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    file_url: str | None = None
    file_type: str | None = None


class VidgoTask(BaseModel):
    """`data` of a status answer, and of a callback body (same shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str | None = None
    status: str
    files: list[VidgoFile] | None = None
    progress: int | float | None = None
    error_message: str | None = None


class VidgoSubmitted(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str = Field(min_length=1, max_length=256)
    status: str | None = None


class VidgoProvider(Provider):
    name: ClassVar[ProviderName] = "vidgo"
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    # -- submit --------------------------------------------------------------------------------

    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        self.require_supported(request)
        parameters: dict[str, Any] = {"prompt": request.prompt, "sound": request.sound}
        if request.first_frame_url is None:
            parameters["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO
        else:
            parameters["image_urls"] = [str(request.first_frame_url)]
        parameters["duration"] = request.duration
        body: dict[str, Any] = {"model": MODEL}
        if callback_url:
            body["callback_url"] = callback_url
        body["input"] = parameters
        return self.json_request("POST", SUBMIT_PATH, body=body)

    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        data = self._data(response)
        try:
            submitted = VidgoSubmitted.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(f"no usable data.task_id ({first_error(exc)})", response) from exc
        return SubmitResult(task_id=submitted.task_id, raw_status=submitted.status)

    # -- status --------------------------------------------------------------------------------

    def build_status(self, task_id: str) -> httpx.Request:
        if not task_id:
            raise ValueError("vidgo: a task id is required")
        return self.json_request("GET", STATUS_PATH + quote(task_id, safe=""))

    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        data = self._data(response)
        try:
            task = VidgoTask.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(f"status data unreadable ({first_error(exc)})", response) from exc
        task_id = self.answered_task_id(task.task_id, task_id, response)
        return _task_status(task_id, task)

    # -- callback ------------------------------------------------------------------------------

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        document = load_callback_json(body)
        data = document.get("data")
        if not isinstance(data, dict):
            raise CallbackRejectedError("missing_data")
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise CallbackRejectedError("missing_task_id")
        try:
            task = VidgoTask.model_validate(data)
        except ValidationError as exc:
            raise CallbackRejectedError("invalid_body") from exc
        return _task_status(task_id, task)

    # -- errors --------------------------------------------------------------------------------

    def http_error(self, response: httpx.Response) -> ProviderError:
        error = super().http_error(response)
        # On the status endpoint 403 means "this task belongs to another account": the task is
        # not ours to see, which is a missing task, not a broken key.
        if response.status_code == 403 and _is_status_request(response):
            error.kind = ErrorKind.NOT_FOUND
        return error

    def _data(self, response: httpx.Response) -> dict[str, Any]:
        """`data` of a `{code, data}` answer; a `code` other than 200 is an error in a 2xx answer."""
        body = self.read_json(response)
        code = body.get("code")
        if code is not None and str(code) != SUCCESS_CODE:
            raise self.envelope_error(str(code), error_text(response), response)
        data = body.get("data")
        if not isinstance(data, dict):
            raise self.malformed("no data object", response)
        return data


def _task_status(task_id: str, task: VidgoTask) -> TaskStatus:
    urls = tuple(file.file_url for file in task.files or () if file.file_url and _is_video(file))
    return TaskStatus(
        task_id=task_id,
        state=STATES.get(task.status, ProviderState.UNKNOWN),
        raw_status=task.status,
        progress=clamp_progress(task.progress),
        result_urls=urls,
        error_message=task.error_message or None,
    )


def _is_video(file: VidgoFile) -> bool:
    """A result file whose type (`video`, `video/mp4`) or, when the type says nothing, extension says video."""
    kind = (file.file_type or "").strip().lower()
    if kind:
        return kind == "video" or kind.startswith("video/")
    path = urlsplit(file.file_url or "").path.lower()
    return path.endswith(VIDEO_EXTENSIONS)


def _is_status_request(response: httpx.Response) -> bool:
    try:
        return STATUS_PATH in response.request.url.path
    except RuntimeError:
        return False
