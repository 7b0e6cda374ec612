"""AI/ML API: `POST /v2/video/generations`, `GET /v2/video/generations?generation_id=`, poll only.

Errors use the documented body `{message, path, requestId, statusCode, timestamp}`; validation failures
are 400 "Body validation error!" followed by what was wrong.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from local.provider_emulator.providers.base import Incoming, Operation, ProviderApi, Reply, SubmitSpec
from local.provider_emulator.tasks import Phase, TaskSnapshot
from local.provider_emulator.validation import Fields, Rejection, check_reference_video, is_http_url, lenient_prompt
from shared.models.common import ProviderName

TEXT_TO_VIDEO = "klingai/video-v2-6-pro-text-to-video"
IMAGE_TO_VIDEO = "klingai/video-v2-6-pro-image-to-video"
MOTION_CONTROL = "klingai/video-v2-6-pro-motion-control"
GENERATIONS_PATH = "/v2/video/generations"
PROMPT_LIMIT = 2500
# Not published: the emulator charges a made-up 21 000 credits per second, 1.5 times that with audio.
CREDITS_PER_SECOND = 21_000
_BASE64 = re.compile(r"^(data:image/[a-z+.-]+;base64,)?[A-Za-z0-9+/\s]+={0,2}$")
_COMMON = ("model", "prompt", "duration", "negative_prompt", "generate_audio", "provider")


# The statuses of the docs' polling sample and of the Kling 2.6 Pro image-to-video page's sample output.
SAMPLE_STATUSES = {
    Phase.QUEUED: "waiting",
    Phase.RUNNING: "active",
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "error",
}


class AimlApi(ProviderApi):
    name: ClassVar[ProviderName] = "aimlapi"
    validation_status: ClassVar[int] = 400
    # 0: the schema's shape (queued/generating/completed, `video.url`, numeric `statusCode` in errors).
    # 1: the samples' (waiting/active/succeeded, the result as `data[0].url`, `statusCode` as a string).
    variants: ClassVar[int] = 2

    def vary(self, body: Any, variant: int) -> Any:
        if variant == 1 and isinstance(body, dict) and isinstance(body.get("statusCode"), int):
            return {**body, "statusCode": str(body["statusCode"])}
        return body

    def operation(self, method: str, path: str) -> Operation | None:
        if path != GENERATIONS_PATH:
            return None
        return {"POST": Operation.SUBMIT, "GET": Operation.STATUS}.get(method)

    def prompt_of(self, body: object) -> str | None:
        return lenient_prompt(body, "prompt")

    def parse_submit(self, body: object) -> SubmitSpec:
        top = Fields(body)
        model = top.string("model", required=True, choices=(TEXT_TO_VIDEO, IMAGE_TO_VIDEO, MOTION_CONTROL))
        if model == MOTION_CONTROL:
            return self._parse_motion_control(top)
        if model == TEXT_TO_VIDEO:
            top.only((*_COMMON, "aspect_ratio", "cfg_scale"), f"for {model}")
            top.string("aspect_ratio", choices=("16:9", "9:16", "1:1"))
            top.number("cfg_scale", minimum=0.0, maximum=1.0)
        else:
            top.only((*_COMMON, "image_url"), f"for {model}")
            image = top.string("image_url", required=True)
            if not is_http_url(image) and not (len(image) >= 16 and _BASE64.match(image)):
                raise Rejection("image_url must be an http(s) URL or a Base64-encoded image")
        prompt = top.string("prompt", required=True, max_length=PROMPT_LIMIT)
        duration = top.integer("duration", choices=(5, 10))
        top.string("negative_prompt", non_empty=False)
        top.boolean("generate_audio")
        top.string("provider", choices=("kling", "klingai", "fal", "auto"))
        return SubmitSpec(model=model, prompt=prompt, duration=duration or 5)

    def _parse_motion_control(self, top: Fields) -> SubmitSpec:
        """klingai/video-v2-6-pro-motion-control: image_url and video_url required, the rest optional."""
        top.only(
            ("model", "prompt", "image_url", "video_url", "character_orientation", "keep_audio"),
            f"for {MOTION_CONTROL}",
        )
        prompt = top.string("prompt", max_length=PROMPT_LIMIT) or ""
        image = top.string("image_url", required=True)
        if not is_http_url(image) and not (len(image) >= 16 and _BASE64.match(image)):
            raise Rejection("image_url must be an http(s) URL or a Base64-encoded image")
        video = top.url("video_url", required=True) or ""
        orientation = top.string("character_orientation", choices=("image", "video")) or "image"
        top.boolean("keep_audio")
        seconds = check_reference_video(video, orientation)
        return SubmitSpec(model=MOTION_CONTROL, prompt=prompt, duration=seconds)

    def new_task_id(self, spec: SubmitSpec, now: float) -> str:
        return f"{uuid.uuid4()}:{spec.model}"

    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply:
        return Reply(200, {"id": task_id, "status": "queued"})

    def status_task_id(self, request: Incoming) -> str:
        task_id = request.query_value("generation_id")
        if not task_id:
            raise Rejection("generation_id query parameter is required")
        return task_id

    def raw_status(self, phase: Phase, fraction: float) -> str:
        return {
            Phase.QUEUED: "queued",
            Phase.RUNNING: "generating",
            Phase.SUCCEEDED: "completed",
            Phase.FAILED: "error",
        }[phase]

    def status_body(self, task: TaskSnapshot) -> dict[str, Any]:
        succeeded = task.phase is Phase.SUCCEEDED
        failed = task.phase is Phase.FAILED
        meta = None
        if succeeded:
            seconds = task.seconds
            audio = task.submitted.get("generate_audio", task.model != MOTION_CONTROL)
            credits = CREDITS_PER_SECOND * int(seconds) * (3 if audio else 2) // 2
            meta = {"usage": {"credits_used": credits}}
        if task.variant == 1:
            return {
                "id": task.task_id,
                "status": SAMPLE_STATUSES[task.phase],
                "data": [{"url": url} for url in task.result_urls] if succeeded else None,
                "error": {"name": "GenerationError", "message": task.fail_message} if failed else None,
                "meta": meta,
            }
        return {
            "id": task.task_id,
            "status": self.raw_status(task.phase, task.fraction),
            "video": {"url": task.result_urls[0]} if succeeded else None,
            "error": {"name": "GenerationError", "message": task.fail_message} if failed else None,
            "meta": meta,
        }

    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        if status == 400 and not message.startswith("Body validation error"):
            message = f"Body validation error! {message}"
        body = {
            "message": message,
            "path": path,
            "requestId": str(uuid.uuid4()),
            "statusCode": status,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        return Reply(status, body)
