"""Kie.ai (api.kie.ai) Market jobs: separate text- and image-to-video model ids, opt-in signed callbacks.

Type traps: `duration` is sent as a string, and `resultJson` / `param` in answers are JSON text
inside the JSON, parsed a second time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import CallbackRejectedError
from shared.models.common import AspectRatio, ProviderName
from shared.models.job import Cost
from shared.models.request import JobRequest
from shared.providers.base import (
    ProbeOutcome,
    ProbeReport,
    Provider,
    ProviderState,
    SubmitResult,
    TaskStatus,
    error_text,
    motion_control_cost,
    probe_verdict,
)
from shared.providers.capabilities import Capabilities, MotionCapabilities
from shared.providers.errors import ProviderError
from shared.providers.kie_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_kie_signature
from shared.providers.parsing import first_error, load_callback_json
from shared.settings import ProviderEndpoint

if TYPE_CHECKING:
    from shared.secrets import ProviderCredentials
    from shared.settings import Settings

TEXT_TO_VIDEO_MODEL = "kling-2.6/text-to-video"
IMAGE_TO_VIDEO_MODEL = "kling-2.6/image-to-video"
MOTION_CONTROL_MODEL = "kling-2.6/motion-control"
# Motion control names its tiers by resolution.
MOTION_MODES: dict[str, str] = {"std": "720p", "pro": "1080p"}
SUBMIT_PATH = "/api/v1/jobs/createTask"
STATUS_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"  # the account's remaining credits: Kie's cheapest call that needs the key
SUCCESS_CODE = "200"
DEFAULT_ASPECT_RATIO: AspectRatio = "16:9"
DEFAULT_SIGNATURE_WINDOW_SECONDS = 300

# recordInfo codes that report the task's own outcome (the original request failed validation,
# or generation failed; `failMsg` says why) rather than a problem with the status query.
TASK_FAILED_CODES = frozenset({"422", "501"})

# Kie's task-detail page says result URLs typically expire 24 hours after completion (its getting-started
# page keeps generated files for 14 days; the URL handed back is the shorter-lived of the two).
MEDIA_RETENTION = timedelta(hours=24)

STATES: dict[str, ProviderState] = {
    "waiting": ProviderState.QUEUED,
    "queuing": ProviderState.QUEUED,
    "generating": ProviderState.RUNNING,
    "success": ProviderState.SUCCEEDED,
    "fail": ProviderState.FAILED,
}

# Credits per job by (duration, sound), from a third-party price table.
PRICES: dict[tuple[int, bool], int] = {(5, False): 55, (5, True): 110, (10, False): 110, (10, True): 220}
PRICE_BASIS = (
    "Estimate from a third-party price table for Kling 2.6 on Kie (5 s: 55 credits silent, 110 with sound; "
    "10 s: 110 silent, 220 with sound); unconfirmed, Kie's own price list is authoritative."
)
# Motion control credits per second of output by tier, from third-party price tables (unconfirmed).
MOTION_CREDITS_PER_SECOND: dict[str, int] = {"std": 11, "pro": 18}

CAPABILITIES = Capabilities(
    provider="kie",
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
    max_prompt_chars=1000,
    prompt_optimization=False,
    watermark=False,
    callbacks=True,
    signed_callbacks=True,
    motion_control=MotionCapabilities(
        model=MOTION_CONTROL_MODEL,
        qualities=("std", "pro"),
        default_quality="std",
        keep_original_sound=False,
        max_prompt_chars=2500,
        billing="per second of output (the reference video's length); about 11 credits/s at 720p (std) and 18 "
        "at 1080p (pro) by third-party price tables (unconfirmed)",
    ),
    notes=(
        "Callback signing is opt-in (a webhook HMAC key set in the Kie console) and covers only the task id "
        "and timestamp, not the body; the task status is re-read before a result is trusted.",
        "Image-to-video takes one image (the first frame), JPEG/PNG/WebP up to 10 MB.",
        "The credit price is an estimate from a third-party table (unconfirmed).",
        "Motion control: mode 720p (std) or 1080p (pro); no field for the reference video's sound, so "
        "keep_original_sound cannot be chosen.",
    ),
)


class KieSubmitted(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str = Field(alias="taskId", min_length=1, max_length=256)


class KieRecord(BaseModel):
    """`data` of a recordInfo answer, and of a callback body (same shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str | None = Field(default=None, alias="taskId")
    state: str | None = None
    # Documented as JSON text; an object is accepted too rather than dropping a result.
    result_json: str | dict[str, Any] | None = Field(default=None, alias="resultJson")
    fail_code: str | int | None = Field(default=None, alias="failCode")
    fail_msg: str | None = Field(default=None, alias="failMsg")
    complete_time: int | float | None = Field(default=None, alias="completeTime")  # epoch milliseconds


class KieProvider(Provider):
    name: ClassVar[ProviderName] = "kie"
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(
        self,
        endpoint: ProviderEndpoint,
        api_key: str,
        http: httpx.Client,
        *,
        webhook_hmac_key: str | None = None,
        signature_window_seconds: int = DEFAULT_SIGNATURE_WINDOW_SECONDS,
    ) -> None:
        super().__init__(endpoint, api_key, http)
        if signature_window_seconds <= 0:
            raise ValueError("kie: signature_window_seconds must be positive")
        # None: signing is not configured for this account. Any other value (even "") means it is,
        # and an unusable key then rejects every callback.
        self.webhook_hmac_key = webhook_hmac_key
        self.signature_window_seconds = signature_window_seconds

    @classmethod
    def options(cls, settings: Settings, credentials: ProviderCredentials) -> dict[str, Any]:
        return {
            "webhook_hmac_key": credentials.kie_webhook_hmac_key,
            "signature_window_seconds": settings.kie_signature_window_seconds,
        }

    # -- submit --------------------------------------------------------------------------------

    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        self.require_supported(request)
        if request.motion_control is not None:
            return self._build_motion_control(request, callback_url)
        image = request.first_frame_url
        parameters: dict[str, Any] = {"prompt": request.prompt}
        if image is not None:
            parameters["image_urls"] = [str(image)]
        parameters["sound"] = request.sound  # required by Kie, so always explicit
        if image is None:  # image-to-video has no aspect_ratio: the image decides
            parameters["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO
        parameters["duration"] = str(request.duration)  # a string: "5" | "10"
        body: dict[str, Any] = {"model": TEXT_TO_VIDEO_MODEL if image is None else IMAGE_TO_VIDEO_MODEL}
        if callback_url:
            body["callBackUrl"] = callback_url
        body["input"] = parameters
        return self.json_request("POST", SUBMIT_PATH, body=body)

    def _build_motion_control(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        motion = request.motion_control
        assert motion is not None
        parameters: dict[str, Any] = {}
        if request.prompt:
            parameters["prompt"] = request.prompt
        parameters["input_urls"] = [str(motion.image_url)]
        parameters["video_urls"] = [str(motion.video_url)]
        parameters["character_orientation"] = motion.character_orientation
        parameters["mode"] = MOTION_MODES[self.capabilities.quality_for(request) or "std"]
        body: dict[str, Any] = {"model": MOTION_CONTROL_MODEL}
        if callback_url:
            body["callBackUrl"] = callback_url
        body["input"] = parameters
        return self.json_request("POST", SUBMIT_PATH, body=body)

    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        body = self.read_json(response)
        code = _envelope_code(body)
        if code is not None and code != SUCCESS_CODE:
            raise self.envelope_error(code, _message(body, response), response)
        try:
            submitted = KieSubmitted.model_validate(body.get("data"))
        except ValidationError as exc:
            raise self.malformed(f"no usable data.taskId ({first_error(exc)})", response) from exc
        return SubmitResult(task_id=submitted.task_id)

    # -- status --------------------------------------------------------------------------------

    def build_status(self, task_id: str) -> httpx.Request:
        if not task_id:
            raise ValueError("kie: a task id is required")
        return self.json_request("GET", STATUS_PATH, params={"taskId": task_id})

    def status(self, task_id: str, *, timeout: float | None = None) -> TaskStatus:
        try:
            return super().status(task_id, timeout=timeout)
        except ProviderError as exc:
            # The same task-outcome codes can come as HTTP statuses instead of envelope codes.
            if exc.http_status is not None and str(exc.http_status) in TASK_FAILED_CODES:
                return TaskStatus(
                    task_id=task_id,
                    state=ProviderState.FAILED,
                    raw_status=str(exc.http_status),
                    error_code=str(exc.http_status),
                    error_message=exc.message,
                )
            raise

    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        body = self.read_json(response)
        code = _envelope_code(body)
        task_failed = code in TASK_FAILED_CODES
        if code is not None and code != SUCCESS_CODE and not task_failed:
            raise self.envelope_error(code, _message(body, response), response)
        data = body.get("data")
        if data is None and task_failed:
            data = {}
        if not isinstance(data, dict):
            raise self.malformed("no data object", response)
        try:
            record = KieRecord.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(f"record unreadable ({first_error(exc)})", response) from exc
        task_id = self.answered_task_id(record.task_id, task_id, response)
        if task_failed and code is not None:
            return _failed_by_code(task_id, record, code, _message(body, response))
        if record.state is None:
            raise self.malformed("no data.state", response)
        return _task_status(task_id, record)

    # -- probe ---------------------------------------------------------------------------------

    def build_probe(self) -> httpx.Request:
        return self.json_request("GET", CREDIT_PATH)

    def read_probe(self, response: httpx.Response) -> ProbeReport:
        try:
            if not response.is_success:
                raise self.http_error(response)
            body = self.read_json(response)
            code = _envelope_code(body)
            if code is not None and code != SUCCESS_CODE:
                raise self.envelope_error(code, _message(body, response), response)
        except ProviderError as err:
            return probe_verdict(err)
        credits = body.get("data")
        if isinstance(credits, bool) or not isinstance(credits, int | float):
            return ProbeReport(outcome=ProbeOutcome.KEY_ACCEPTED, detail="the key was accepted; no balance was given")
        return ProbeReport(outcome=ProbeOutcome.KEY_ACCEPTED, detail="the key was accepted", balance=float(credits))

    # -- callback ------------------------------------------------------------------------------

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        document = load_callback_json(body)
        task_id = callback_task_id(document)
        if task_id is None:
            raise CallbackRejectedError("missing_task_id")
        data = document.get("data")
        try:
            record = KieRecord.model_validate(data if isinstance(data, dict) else {})
        except ValidationError as exc:
            raise CallbackRejectedError("invalid_body") from exc
        code = _envelope_code(document)
        if record.state is None and code in TASK_FAILED_CODES:
            return _failed_by_code(task_id, record, code, _message(document, None))
        # A body without a state says nothing usable: UNKNOWN, and the caller re-reads the status.
        return _task_status(task_id, record)

    def verify_callback(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        if self.webhook_hmac_key is None:
            return
        verify_kie_signature(
            hmac_key=self.webhook_hmac_key,
            task_id=callback_task_id(load_callback_json(body)),
            timestamp=_header(headers, TIMESTAMP_HEADER),
            signature=_header(headers, SIGNATURE_HEADER),
            now=time.time() if now is None else now,
            window_seconds=self.signature_window_seconds,
        )

    # -- price ---------------------------------------------------------------------------------

    def estimate_cost(self, request: JobRequest) -> Cost | None:
        if request.motion_control is not None:
            tier = self.capabilities.quality_for(request) or "std"
            rate = MOTION_CREDITS_PER_SECOND[tier]
            basis = (
                f"Estimate: Kling 2.6 motion control on Kie at {rate} credits per second ({MOTION_MODES[tier]}), "
                "from third-party price tables; unconfirmed, Kie's own price list is authoritative"
            )
            return motion_control_cost(request, rate, basis)
        return Cost(amount=PRICES[(request.duration, request.sound)], basis=PRICE_BASIS)


def callback_task_id(document: Mapping[str, Any]) -> str | None:
    """The task id a Kie callback is about: `data.taskId`, then `data.task_id`, then top-level `taskId`.

    Market callbacks carry `data.taskId`; Kie's signature sample reads `data.task_id`.
    """
    data = document.get("data")
    candidates = [data.get("taskId"), data.get("task_id")] if isinstance(data, dict) else []
    candidates.append(document.get("taskId"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _task_status(task_id: str, record: KieRecord) -> TaskStatus:
    raw = record.state or ""
    state = STATES.get(raw, ProviderState.UNKNOWN)
    urls: tuple[str, ...] = ()
    problem: str | None = None
    expires_at: datetime | None = None
    if state is ProviderState.SUCCEEDED:
        urls, problem = _result_urls(record.result_json)
        expires_at = _plus_retention(record.complete_time)
    return TaskStatus(
        task_id=task_id,
        state=state,
        raw_status=raw,
        result_urls=urls,
        error_message=record.fail_msg or problem,
        error_code=None if record.fail_code in (None, "") else str(record.fail_code),
        result_expires_at=expires_at,
    )


def _failed_by_code(task_id: str, record: KieRecord, code: str, message: str | None) -> TaskStatus:
    return TaskStatus(
        task_id=task_id,
        state=ProviderState.FAILED,
        raw_status=record.state or code,
        error_message=record.fail_msg or message,
        error_code=code if record.fail_code in (None, "") else str(record.fail_code),
    )


def _result_urls(result_json: str | dict[str, Any] | None) -> tuple[tuple[str, ...], str | None]:
    """`resultUrls` from `resultJson`, or no URLs and why.

    A success without a readable result is returned as SUCCEEDED with no URLs (and why) rather than raised;
    the provider base marks such an answer unrecognized, so the job keeps waiting for a readable one.
    """
    if result_json is None or result_json == "":
        return (), "success without resultJson"
    parsed: object = result_json
    if isinstance(result_json, str):
        try:
            parsed = json.loads(result_json)
        except (ValueError, RecursionError):
            return (), "resultJson is not JSON"
    urls = parsed.get("resultUrls") if isinstance(parsed, dict) else None
    if not isinstance(urls, list):
        return (), "resultJson has no resultUrls list"
    found = tuple(url for url in urls if isinstance(url, str) and url)
    return found, None if found else "resultJson lists no result URL"


def _plus_retention(complete_time_ms: float | None) -> datetime | None:
    if complete_time_ms is None or complete_time_ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(complete_time_ms / 1000, UTC) + MEDIA_RETENTION
    except (OverflowError, ValueError, OSError):
        return None


def _envelope_code(body: Mapping[str, Any]) -> str | None:
    code = body.get("code")
    return None if code is None else str(code)


def _message(body: Mapping[str, Any], response: httpx.Response | None) -> str | None:
    message = body.get("msg")
    if isinstance(message, str) and message:
        return message[:300]
    return error_text(response) if response is not None else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
