"""Pixwith (api.pixwith.ai): Kling 2.6 as model "2-33", `Api-Key` header, polling only.

Create: `POST /api/task/create` with `{prompt, model_id, options{...}, image_urls?}`, answer
`{"code": 1, "message", "data": {"task_id", "estimated_time"}}`. Status: `POST /api/task/get` with
`{"task_id"}`, answer `data.status` as an integer (1 processing, 2 completed, 3 failed) and
`data.result_urls[]`. Errors arrive inside HTTP 200: `code` 0 with a message, or `code` 2 for a failed
authentication; some answers spell the message `msg`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.digits import ascii_int
from shared.models.common import ProviderName
from shared.models.job import Cost
from shared.models.request import JobRequest
from shared.providers.base import (
    ProbeOutcome,
    ProbeReport,
    Provider,
    ProviderState,
    SubmitResult,
    TaskStatus,
    probe_verdict,
    retry_after_seconds,
)
from shared.providers.capabilities import Capabilities
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.parsing import Lenient, first_error

MODEL_ID = "2-33"
CREATE_PATH = "/api/task/create"
STATUS_PATH = "/api/task/get"
CREDITS_PATH = "/api/task/get_credits"  # the account's credits (Pixwith's own client code)
DEFAULT_ASPECT_RATIO = "16:9"

SUCCESS_CODE = 1
AUTH_FAILED_CODE = 2

STATES: dict[int, ProviderState] = {
    1: ProviderState.RUNNING,
    2: ProviderState.SUCCEEDED,
    3: ProviderState.FAILED,
}

# `code: 0` messages seen in Pixwith's own client code.
ERROR_MESSAGES: dict[str, ErrorKind] = {
    "invalid api key": ErrorKind.UNAVAILABLE,
    "credits not enough": ErrorKind.UNAVAILABLE,
    "invalid image format": ErrorKind.REJECTED,
    "invalid image url": ErrorKind.REJECTED,
}

# Pixwith answers every error as HTTP 200 `code: 0`; messages naming a transient condition are
# retried (and fail over), "not found" is an unknown task. Any other message is one we do not know the
# meaning of: unrecognized, so a submit fails over and a status check keeps the job waiting.
TRANSIENT_WORDS = (
    "too many",
    "rate limit",
    "try again",
    "busy",
    "server error",
    "maintenance",
    "timeout",
    "unavailable",
)
NOT_FOUND_WORDS = ("not found", "not exist")


def message_kind(text: str | None) -> ErrorKind:
    normalized = _normalized(text)
    if normalized in ERROR_MESSAGES:
        return ERROR_MESSAGES[normalized]
    if any(word in normalized for word in TRANSIENT_WORDS):
        return ErrorKind.RETRYABLE
    if any(word in normalized for word in NOT_FOUND_WORDS):
        return ErrorKind.NOT_FOUND
    return ErrorKind.UNRECOGNIZED


# Credits per request from the price table: (duration, sound) -> credits.
PRICES: dict[tuple[int, bool], int] = {(5, False): 45, (5, True): 90, (10, False): 90, (10, True): 180}


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int | None = None
    message: Lenient[str] = None
    msg: Lenient[str] = None
    data: dict[str, Any] | None = None

    @property
    def text(self) -> str | None:
        return self.message or self.msg


class _Created(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str = Field(min_length=1)
    estimated_time: Lenient[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str | None = Field(default=None, min_length=1)
    status: int | str
    result_urls: list[str] | None = None


CAPABILITIES = Capabilities(
    provider="pixwith",
    durations=(5, 10),
    aspect_ratios=("1:1", "16:9", "9:16"),
    aspect_ratio_with_image=False,
    sound=True,
    qualities=(),
    first_frame=True,
    last_frame=False,
    negative_prompt=False,
    cfg_scale=False,
    max_outputs=4,
    # No limit is published; our own request limit applies.
    max_prompt_chars=2500,
    prompt_optimization=True,
    watermark=False,
    callbacks=False,
    notes=(
        "No callbacks: completion is found by polling.",
        "Prompt length limit, result URL lifetime and rate limits are not documented.",
        "Whether the per-request price scales with num_outputs is not stated.",
    ),
)


class PixwithProvider(Provider):
    name: ClassVar[ProviderName] = "pixwith"
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def auth_headers(self) -> dict[str, str]:
        return {"Api-Key": self.api_key, "Accept": "application/json"}

    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        self.require_supported(request)
        options: dict[str, Any] = {
            "prompt_optimization": request.prompt_optimization,
            "num_outputs": request.num_outputs,
            "sound": request.sound,
            "duration": request.duration,
        }
        body: dict[str, Any] = {"prompt": request.prompt, "model_id": MODEL_ID, "options": options}
        if request.first_frame_url is None:
            options["aspect_ratio"] = request.aspect_ratio or DEFAULT_ASPECT_RATIO
        else:
            body["image_urls"] = [str(request.first_frame_url)]
        return self.json_request("POST", CREATE_PATH, body=body)

    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        data = self._data(response)
        try:
            created = _Created.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        estimate = created.estimated_time
        return SubmitResult(
            task_id=created.task_id, estimated_seconds=round(estimate) if estimate is not None else None
        )

    def build_status(self, task_id: str) -> httpx.Request:
        if not task_id:
            raise ValueError(f"{self.name}: a task id is required")
        return self.json_request("POST", STATUS_PATH, body={"task_id": task_id})

    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        data = self._data(response)
        try:
            task = _Task.model_validate(data)
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        task_id = self.answered_task_id(task.task_id, task_id, response)
        return TaskStatus(
            task_id=task_id,
            state=_state(task.status),
            raw_status=str(task.status),
            result_urls=tuple(url for url in task.result_urls or () if url),
        )

    def build_probe(self) -> httpx.Request:
        return self.json_request("POST", CREDITS_PATH, body={})

    def read_probe(self, response: httpx.Response) -> ProbeReport:
        try:
            if not response.is_success:
                raise self.http_error(response)
            data = self._data(response)
        except ProviderError as err:
            return probe_verdict(err)
        credits = data.get("credits")
        if isinstance(credits, bool) or not isinstance(credits, int | float):
            return ProbeReport(outcome=ProbeOutcome.KEY_ACCEPTED, detail="the key was accepted; no balance was given")
        return ProbeReport(outcome=ProbeOutcome.KEY_ACCEPTED, detail="the key was accepted", balance=float(credits))

    def estimate_cost(self, request: JobRequest) -> Cost | None:
        amount = PRICES.get((request.duration, request.sound))
        if amount is None:
            return None
        sound = "with" if request.sound else "without"
        return Cost(
            amount=amount,
            basis=(
                f"Pixwith's published Kling 2.6 price for {request.duration} s {sound} sound, per request "
                f"(45/90/90/180 credits); an estimate: whether it scales with num_outputs "
                f"({request.num_outputs} here) is not stated"
            ),
        )

    def _data(self, response: httpx.Response) -> dict[str, Any]:
        """The `data` object of a successful envelope; the envelope's error otherwise."""
        try:
            envelope = _Envelope.model_validate(self.read_json(response))
        except ValidationError as exc:
            raise self.malformed(first_error(exc, "body"), response) from exc
        if envelope.code is None:
            raise self.malformed("no code in the answer", response)
        if envelope.code != SUCCESS_CODE:
            raise self._envelope_failure(envelope, response)
        if envelope.data is None:
            raise self.malformed("no data in a successful answer", response)
        return envelope.data

    def _envelope_failure(self, envelope: _Envelope, response: httpx.Response) -> ProviderError:
        text = envelope.text
        message = text or f"error code {envelope.code}"
        kind = ErrorKind.UNAVAILABLE if envelope.code == AUTH_FAILED_CODE else message_kind(text)
        if kind is ErrorKind.UNRECOGNIZED:
            return self.unrecognized(message, response, provider_code=str(envelope.code))
        return ProviderError(
            self.name,
            kind,
            message,
            http_status=response.status_code,
            provider_code=str(envelope.code),
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )


def _state(status: int | str) -> ProviderState:
    """The documented integers; a digit string is read as its number, anything else is unknown."""
    number = ascii_int(status.strip() if isinstance(status, str) else status)
    return ProviderState.UNKNOWN if number is None else STATES.get(number, ProviderState.UNKNOWN)


def _normalized(text: str | None) -> str:
    return " ".join((text or "").lower().split()).rstrip(".!")
