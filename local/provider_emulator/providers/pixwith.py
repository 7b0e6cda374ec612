"""Pixwith: `POST /api/task/create`, `POST /api/task/get` with `{task_id}`, `Api-Key` header, poll only.

Every answer is HTTP 200; `code` 1 is success and 0 an error, with the reason in `message`.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, ClassVar

from local.provider_emulator.providers.base import Incoming, Operation, ProviderApi, Reply, SubmitSpec
from local.provider_emulator.tasks import Phase, TaskSnapshot
from local.provider_emulator.validation import Fields, Rejection, lenient_prompt
from shared.models.common import ProviderName

MODEL_ID = "2-33"  # Kling 2.6
SUBMIT_PATH = "/api/task/create"
STATUS_PATH = "/api/task/get"
CREDITS_PATH = "/api/task/get_credits"
MESSAGES: dict[int, str] = {
    401: "Invalid API KEY",
    402: "Credits not enough",
    422: "Invalid image url",
    429: "Too many requests",
    455: "Service under maintenance",
    500: "Internal server error",
    505: "Function disabled",
}


class PixwithApi(ProviderApi):
    name: ClassVar[ProviderName] = "pixwith"
    validation_status: ClassVar[int] = 422
    # 0: the API pages' `message`. 1: `msg`, as Pixwith's MCP service contract spells it.
    variants: ClassVar[int] = 2

    def vary(self, body: Any, variant: int) -> Any:
        if variant == 1 and isinstance(body, dict) and "message" in body:
            return {("msg" if key == "message" else key): value for key, value in body.items()}
        return body

    def operation(self, method: str, path: str) -> Operation | None:
        if method != "POST":
            return None
        return {SUBMIT_PATH: Operation.SUBMIT, STATUS_PATH: Operation.STATUS, CREDITS_PATH: Operation.CREDITS}.get(path)

    def credits_body(self, credits: float) -> dict[str, Any]:
        return {"code": 1, "message": "success", "data": {"credits": credits}}

    def authorized(self, request: Incoming, key: str) -> bool:
        return request.header("Api-Key") == key

    def prompt_of(self, body: object) -> str | None:
        return lenient_prompt(body, "prompt")

    def parse_submit(self, body: object) -> SubmitSpec:
        top = Fields(body)
        top.only(("prompt", "image_urls", "model_id", "options"))
        prompt = top.string("prompt", required=True)
        model_id = top.string("model_id", required=True)
        if model_id != MODEL_ID:
            raise Rejection(f'Invalid model_id: {model_id!r} (Kling 2.6 is "{MODEL_ID}")')
        top.url_list("image_urls", min_items=1, max_items=1)
        options = top.object("options", required=True)
        # aspect_ratio is read for text-to-video only; with an image the image's ratio wins.
        options.only(("prompt_optimization", "num_outputs", "sound", "aspect_ratio", "duration"))
        options.boolean("prompt_optimization", required=True)
        outputs = options.integer("num_outputs", minimum=1, maximum=4)
        options.boolean("sound", required=True)
        options.string("aspect_ratio", choices=("1:1", "16:9", "9:16"))
        duration = options.integer("duration", required=True, choices=(5, 10))
        return SubmitSpec(model=MODEL_ID, prompt=prompt, num_outputs=outputs or 1, duration=duration)

    def new_task_id(self, spec: SubmitSpec, now: float) -> str:
        return uuid.uuid4().hex

    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply:
        data = {"task_id": task_id, "estimated_time": math.ceil(job_seconds)}
        return Reply(200, {"code": 1, "message": "success", "data": data})

    def status_task_id(self, request: Incoming) -> str:
        try:
            body = json.loads(request.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Rejection("request body is not valid JSON") from exc
        return Fields(body).string("task_id", required=True)

    def raw_status(self, phase: Phase, fraction: float) -> int:
        return {Phase.QUEUED: 1, Phase.RUNNING: 1, Phase.SUCCEEDED: 2, Phase.FAILED: 3}[phase]

    def status_body(self, task: TaskSnapshot) -> dict[str, Any]:
        urls = list(task.result_urls) if task.phase is Phase.SUCCEEDED else []
        data = {"task_id": task.task_id, "status": self.raw_status(task.phase, task.fraction), "result_urls": urls}
        return {"code": 1, "message": "success", "data": data}

    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        return Reply(200, {"code": 0, "message": message, "data": None})

    def fault_error(self, status: int, *, path: str = "") -> Reply:
        return self.error(status, MESSAGES.get(status, "Request failed"))

    def unauthorized(self, path: str = "") -> Reply:
        return self.error(401, MESSAGES[401])

    def not_found(self, task_id: str, path: str = "") -> Reply:
        return self.error(404, "Task not found")
