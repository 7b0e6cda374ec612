"""Vidgo: `POST /api/generate/submit`, `GET /api/generate/status/{task_id}`, unsigned callbacks.

The image field of kling-2.6 is undocumented; `input.image_urls` (one URL) is accepted as the likely name.
Error bodies are not documented either; the emulator answers `{code, message, data: null}` with the same
HTTP status, in the style of the success envelope. Vidgo requires public HTTPS callback URLs; the
emulator also takes plain http (loopback receivers in local mode) but keeps the 2048-character limit.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from local.provider_emulator.providers.base import CallbackPolicy, Incoming, Operation, ProviderApi, Reply, SubmitSpec
from local.provider_emulator.tasks import Phase, TaskSnapshot
from local.provider_emulator.validation import Fields, Rejection, lenient_prompt
from shared.models.common import ProviderName

MODEL = "kling-2.6"
SUBMIT_PATH = "/api/generate/submit"
STATUS_PREFIX = "/api/generate/status/"
_ID_ALPHABET = string.ascii_lowercase + string.digits


def vidgo_time(epoch: float) -> str:
    """Vidgo's `created_time`: ISO 8601 to the second, without a zone suffix (UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class VidgoApi(ProviderApi):
    name: ClassVar[ProviderName] = "vidgo"
    # Documented: 3 retries after 1 s, 2 s and 4 s on non-2xx or no answer; 10 s to answer.
    callbacks: ClassVar[CallbackPolicy | None] = CallbackPolicy(
        retry_delays=(1.0, 2.0, 4.0), timeout=10.0, signed=False
    )
    validation_status: ClassVar[int] = 400

    def operation(self, method: str, path: str) -> Operation | None:
        if method == "POST" and path == SUBMIT_PATH:
            return Operation.SUBMIT
        if method == "GET" and path.startswith(STATUS_PREFIX):
            return Operation.STATUS
        return None

    def prompt_of(self, body: object) -> str | None:
        return lenient_prompt(body, "input", "prompt")

    def parse_submit(self, body: object) -> SubmitSpec:
        top = Fields(body)
        top.only(("model", "callback_url", "input"))
        model = top.string("model", required=True, choices=(MODEL,))
        callback_url = top.url("callback_url")
        params = top.object("input", required=True)
        params.only(("prompt", "sound", "aspect_ratio", "duration", "image_urls"), f"for {MODEL}")
        prompt = params.string("prompt", required=True)
        params.boolean("sound")
        params.string("aspect_ratio", choices=("1:1", "16:9", "9:16"))
        duration = params.integer("duration", choices=(5, 10))
        params.url_list("image_urls", min_items=1, max_items=1)
        return SubmitSpec(model=model, prompt=prompt, callback_url=callback_url, duration=duration or 5)

    def new_task_id(self, spec: SubmitSpec, now: float) -> str:
        suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
        return f"task-unified-{int(now)}-{suffix}"

    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply:
        data = {"task_id": task_id, "status": "not_started", "created_time": vidgo_time(now)}
        return Reply(200, {"code": 200, "data": data})

    def status_task_id(self, request: Incoming) -> str:
        task_id = unquote(request.path.removeprefix(STATUS_PREFIX))
        if not task_id:
            raise Rejection("task_id is missing from the path", status=404)
        return task_id

    def raw_status(self, phase: Phase, fraction: float) -> str:
        return {
            Phase.QUEUED: "not_started",
            Phase.RUNNING: "running",
            Phase.SUCCEEDED: "finished",
            Phase.FAILED: "failed",
        }[phase]

    def status_body(self, task: TaskSnapshot) -> dict[str, Any]:
        succeeded = task.phase is Phase.SUCCEEDED
        data = {
            "task_id": task.task_id,
            "status": self.raw_status(task.phase, task.fraction),
            "files": [{"file_url": url, "file_type": "video"} for url in task.result_urls] if succeeded else [],
            "created_time": vidgo_time(task.created),
            "progress": task.progress,
            "error_message": task.fail_message if task.phase is Phase.FAILED else None,
        }
        return {"code": 200, "data": data}

    def stale_callback_body(self, task: TaskSnapshot) -> dict[str, Any]:
        # A "running" notice arriving after the terminal one.
        return self.status_body(replace(task, phase=Phase.RUNNING, progress=50, fail_message=None))

    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        return Reply(status, {"code": status, "message": message, "data": None})
