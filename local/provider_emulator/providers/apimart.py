"""APIMart-style API: `POST /v1/videos/generations`, `GET /v1/tasks/{task_id}`, poll only.

Error bodies are not documented; the emulator answers `{code, error: {message, type}}` with the same
HTTP status.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, ClassVar
from urllib.parse import unquote

from local.provider_emulator.providers.base import Incoming, Operation, ProviderApi, Reply, SubmitSpec
from local.provider_emulator.tasks import Phase, TaskSnapshot
from local.provider_emulator.validation import Fields, Rejection, check_reference_video, lenient_prompt
from shared.models.common import ProviderName

MODEL = "kling-v2-6"
MOTION_CONTROL = "kling-v2-6-motion-control"
SUBMIT_PATH = "/v1/videos/generations"
STATUS_PREFIX = "/v1/tasks/"
PROMPT_LIMIT = 2500
RESULT_LIFETIME = 24 * 3600  # the documented examples expire results about a day after creation
LANGUAGES = ("zh", "en", "ko", "ja")
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ApimartApi(ProviderApi):
    name: ClassVar[ProviderName] = "apimart"
    validation_status: ClassVar[int] = 400
    # 0: the video page's shape (`result.videos[].url` as a list). 1: the task page's example
    # (`result.images[].url`), with `url` as a plain string.
    variants: ClassVar[int] = 2

    def operation(self, method: str, path: str) -> Operation | None:
        if method == "POST" and path == SUBMIT_PATH:
            return Operation.SUBMIT
        if method == "GET" and path.startswith(STATUS_PREFIX):
            return Operation.STATUS
        return None

    def prompt_of(self, body: object) -> str | None:
        return lenient_prompt(body, "prompt")

    def parse_submit(self, body: object) -> SubmitSpec:
        top = Fields(body)
        if top.data.get("model") == MOTION_CONTROL:
            return self._parse_motion_control(top)
        top.only(
            (
                "model",
                "prompt",
                "mode",
                "duration",
                "aspect_ratio",
                "negative_prompt",
                "image_urls",
                "audio",
                "watermark",
            )
        )
        model = top.string("model", required=True, choices=(MODEL, MOTION_CONTROL))
        prompt = top.string("prompt", required=True, max_length=PROMPT_LIMIT)
        mode = top.string("mode", choices=("std", "pro")) or "std"
        duration = top.integer("duration", choices=(5, 10))
        top.string("aspect_ratio", choices=("16:9", "9:16", "1:1"))
        top.string("negative_prompt", non_empty=False)
        images = top.url_list("image_urls", min_items=1, max_items=2) or []
        audio = top.boolean("audio")
        top.boolean("watermark")
        last_frame = len(images) == 2
        if last_frame and mode != "pro":
            raise Rejection('image_urls with 2 images (first and last frame) requires mode "pro"')
        if audio is not None and mode != "pro":  # the parameter itself needs pro, even set to false
            raise Rejection('audio requires mode "pro" (std mode is silent only)')
        if last_frame and audio:
            raise Rejection("in pro mode the last frame (2 image_urls) and audio cannot be used together")
        return SubmitSpec(model=model, prompt=prompt, duration=duration or 5)

    def _parse_motion_control(self, top: Fields) -> SubmitSpec:
        """kling-v2-6-motion-control on the same endpoint: image_url, video_url and the orientation required."""
        top.only(
            ("model", "prompt", "image_url", "video_url", "keep_original_sound", "character_orientation", "mode"),
            f"for {MOTION_CONTROL}",
        )
        prompt = top.string("prompt", max_length=PROMPT_LIMIT) or ""
        top.url("image_url", required=True)
        video = top.url("video_url", required=True) or ""
        top.string("keep_original_sound", choices=("yes", "no"))
        orientation = top.string("character_orientation", required=True, choices=("image", "video"))
        top.string("mode", choices=("std", "pro"))
        seconds = check_reference_video(video, orientation)
        return SubmitSpec(model=MOTION_CONTROL, prompt=prompt, duration=seconds)

    def new_task_id(self, spec: SubmitSpec, now: float) -> str:
        return "task_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))

    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply:
        return Reply(200, {"code": 200, "data": [{"status": "submitted", "task_id": task_id}]})

    def status_task_id(self, request: Incoming) -> str:
        language = request.query_value("language")
        if language is not None and language not in LANGUAGES:
            raise Rejection(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")
        task_id = unquote(request.path.removeprefix(STATUS_PREFIX))
        if not task_id:
            raise Rejection("task_id is missing from the path", status=404)
        return task_id

    def raw_status(self, phase: Phase, fraction: float) -> str:
        return {
            Phase.QUEUED: "pending",
            Phase.RUNNING: "processing",
            Phase.SUCCEEDED: "completed",
            Phase.FAILED: "failed",
        }[phase]

    def status_body(self, task: TaskSnapshot) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": task.task_id,
            "status": self.raw_status(task.phase, task.fraction),
            "progress": task.progress,
            "created": int(task.created),
            "estimated_time": math.ceil(task.job_seconds),
        }
        if task.finished is not None:
            data["completed"] = int(task.finished)
            data["actual_time"] = round(task.finished - task.created)
        if task.phase is Phase.SUCCEEDED:
            expires = int(task.created) + RESULT_LIFETIME
            if task.variant == 1:
                data["result"] = {"images": [{"url": url, "expires_at": expires} for url in task.result_urls]}
            else:
                data["result"] = {"videos": [{"url": [url], "expires_at": expires} for url in task.result_urls]}
        if task.phase is Phase.FAILED:
            data["error"] = {"code": "generation_failed", "message": task.fail_message}
        return {"code": 200, "data": data}

    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        error_type = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return Reply(status, {"code": status, "error": {"message": message, "type": error_type}})
