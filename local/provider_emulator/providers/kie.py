"""Kie.ai Market jobs: `POST /api/v1/jobs/createTask`, `GET /api/v1/jobs/recordInfo?taskId=`, signed callbacks.

Errors answer `{code, msg, data: null}` with `code` equal to the HTTP status (Kie documents the codes but
not whether they also travel as the HTTP status; the emulator sends both, so either reading works).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any, ClassVar

from local.provider_emulator.providers.base import CallbackPolicy, Incoming, Operation, ProviderApi, Reply, SubmitSpec
from local.provider_emulator.tasks import QUEUED_SHARE, Phase, TaskSnapshot
from local.provider_emulator.validation import Fields, Rejection, check_reference_video, lenient_prompt
from shared.models.common import ProviderName

TEXT_TO_VIDEO = "kling-2.6/text-to-video"
IMAGE_TO_VIDEO = "kling-2.6/image-to-video"
MOTION_CONTROL = "kling-2.6/motion-control"
MOTION_PROMPT_LIMIT = 2500
SUBMIT_PATH = "/api/v1/jobs/createTask"
STATUS_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"
PROMPT_LIMIT = 1000
FAIL_CODE = "501"  # Kie's "generation failed" code
STALE_FAIL_MESSAGE = "internal error, please try again later"


def epoch_ms(epoch: float) -> int:
    return int(epoch * 1000)


class KieApi(ProviderApi):
    name: ClassVar[ProviderName] = "kie"
    # Kie does not document retries for Market-job callbacks; the emulator retries a failed delivery
    # twice more (after 1 s and 2 s) so receivers see repeats, and gives 15 s to answer as Kie's other
    # callback pages state.
    callbacks: ClassVar[CallbackPolicy | None] = CallbackPolicy(retry_delays=(1.0, 2.0), timeout=15.0, signed=True)
    validation_status: ClassVar[int] = 422
    # 0: the Market pages' shape (`msg`; null failCode/failMsg; callback `data.taskId`). 1: `message` for `msg`,
    # "" for the empty fail fields, the webhook-verification sample's `data.task_id` in callbacks. 2: "" fail
    # fields and the task id at the callback's top level.
    variants: ClassVar[int] = 3

    def vary(self, body: Any, variant: int) -> Any:
        if variant == 1 and isinstance(body, dict) and "msg" in body:
            return {("message" if key == "msg" else key): value for key, value in body.items()}
        return body

    def operation(self, method: str, path: str) -> Operation | None:
        if method == "POST" and path == SUBMIT_PATH:
            return Operation.SUBMIT
        if method == "GET" and path == STATUS_PATH:
            return Operation.STATUS
        if method == "GET" and path == CREDIT_PATH:
            return Operation.CREDITS
        return None

    def credits_body(self, credits: float) -> dict[str, Any]:
        return {"code": 200, "msg": "success", "data": credits}

    def prompt_of(self, body: object) -> str | None:
        return lenient_prompt(body, "input", "prompt")

    def parse_submit(self, body: object) -> SubmitSpec:
        top = Fields(body)
        top.only(("model", "callBackUrl", "input"))
        model = top.string("model", required=True, choices=(TEXT_TO_VIDEO, IMAGE_TO_VIDEO, MOTION_CONTROL))
        callback_url = top.url("callBackUrl")
        params = top.object("input", required=True)
        if model == MOTION_CONTROL:
            return self._parse_motion_control(params, callback_url)
        if model == TEXT_TO_VIDEO:
            params.only(("prompt", "sound", "aspect_ratio", "duration"), f"for {model}")
            params.string("aspect_ratio", required=True, choices=("1:1", "16:9", "9:16"))
        else:
            params.only(("prompt", "image_urls", "sound", "duration"), f"for {model}")
            params.url_list("image_urls", required=True, min_items=1, max_items=1)
        prompt = params.string("prompt", required=True, max_length=PROMPT_LIMIT)
        params.boolean("sound", required=True)
        duration = params.string("duration", required=True, choices=("5", "10"))
        return SubmitSpec(model=model, prompt=prompt, callback_url=callback_url, duration=int(duration))

    def _parse_motion_control(self, params: Fields, callback_url: str | None) -> SubmitSpec:
        """kling-2.6/motion-control: one image, one 3-30 s video, the orientation and the mode are required."""
        params.only(("prompt", "input_urls", "video_urls", "character_orientation", "mode"), f"for {MOTION_CONTROL}")
        prompt = params.string("prompt", max_length=MOTION_PROMPT_LIMIT) or ""
        params.url_list("input_urls", required=True, min_items=1, max_items=1)
        videos = params.url_list("video_urls", required=True, min_items=1, max_items=1) or []
        orientation = params.string("character_orientation", required=True, choices=("image", "video"))
        params.string("mode", required=True, choices=("720p", "1080p"))
        seconds = check_reference_video(videos[0], orientation)
        return SubmitSpec(model=MOTION_CONTROL, prompt=prompt, callback_url=callback_url, duration=seconds)

    def new_task_id(self, spec: SubmitSpec, now: float) -> str:
        return uuid.uuid4().hex

    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply:
        return Reply(200, {"code": 200, "msg": "success", "data": {"taskId": task_id}})

    def status_task_id(self, request: Incoming) -> str:
        task_id = request.query_value("taskId")
        if not task_id:
            raise Rejection("taskId query parameter is required")
        return task_id

    def raw_status(self, phase: Phase, fraction: float) -> str:
        if phase is Phase.QUEUED:
            return "waiting" if fraction < QUEUED_SHARE / 2 else "queuing"
        return {Phase.RUNNING: "generating", Phase.SUCCEEDED: "success", Phase.FAILED: "fail"}[phase]

    def status_body(self, task: TaskSnapshot) -> dict[str, Any]:
        succeeded = task.phase is Phase.SUCCEEDED
        failed = task.phase is Phase.FAILED
        empty = "" if task.variant in (1, 2) else None
        data = {
            "taskId": task.task_id,
            "model": task.model,
            "state": self.raw_status(task.phase, task.fraction),
            "param": json.dumps(task.submitted),
            "resultJson": json.dumps({"resultUrls": list(task.result_urls)}) if succeeded else empty,
            "failCode": FAIL_CODE if failed else empty,
            "failMsg": task.fail_message if failed else empty,
            "costTime": epoch_ms(task.finished) - epoch_ms(task.created) if task.finished is not None else None,
            "completeTime": epoch_ms(task.finished) if task.finished is not None else None,
            "createTime": epoch_ms(task.created),
        }
        return {"code": 200, "msg": "success", "data": data}

    def callback_body(self, task: TaskSnapshot) -> dict[str, Any]:
        body = self.status_body(task)
        if task.variant == 1:
            body["data"]["task_id"] = body["data"].pop("taskId")
        elif task.variant == 2:
            body["taskId"] = body["data"].pop("taskId")
        return body

    def stale_callback_body(self, task: TaskSnapshot) -> dict[str, Any]:
        # Kie only calls back at the end, so a stale notice is the opposite ending.
        if task.phase is Phase.SUCCEEDED:
            return self.callback_body(replace(task, phase=Phase.FAILED, fail_message=STALE_FAIL_MESSAGE))
        return self.callback_body(replace(task, phase=Phase.SUCCEEDED, fail_message=None))

    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        return Reply(status, {"code": status, "msg": message, "data": None})
