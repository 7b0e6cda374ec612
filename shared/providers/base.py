"""The small interface every provider adapter implements, and the HTTP plumbing they share.

An adapter is pure shape knowledge: how to build the provider's submit and status requests and
how to read its answers and callbacks. Sending, timeouts and HTTP error mapping live here.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.digits import ascii_int
from shared.errors import CallbackRejectedError, UnsupportedRequestError
from shared.models.common import ProviderName, utcnow
from shared.models.job import Cost
from shared.models.request import JobRequest, reference_seconds_allowed
from shared.providers.capabilities import Capabilities, Violation
from shared.providers.errors import ErrorKind, ProviderError, kind_for_status
from shared.providers.redaction import answer_excerpt
from shared.retry_after import retry_after_seconds as read_retry_after
from shared.settings import ProviderEndpoint

if TYPE_CHECKING:
    from shared.secrets import ProviderCredentials
    from shared.settings import Settings


class ProviderState(StrEnum):
    """A provider's task status, normalized. UNKNOWN means: a status value we do not know; never final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (ProviderState.SUCCEEDED, ProviderState.FAILED, ProviderState.CANCELED)


class SubmitResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str = Field(min_length=1, max_length=256)
    raw_status: str | None = None
    estimated_seconds: int | None = Field(default=None, ge=0)


class TaskStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    state: ProviderState
    raw_status: str
    progress: int | None = Field(default=None, ge=0, le=100)
    result_urls: tuple[str, ...] = ()
    error_message: str | None = None
    error_code: str | None = None
    result_expires_at: datetime | None = None
    credits_used: float | None = None
    # Why this answer cannot be acted on (an unknown status value, success without a video URL, ...), and
    # the answer itself, redacted. Such an answer is never final: the job keeps waiting (services/unrecognized).
    unrecognized: str | None = None
    answer: str | None = None


def unrecognized_reason(status: TaskStatus) -> str | None:
    """The one rule for every provider: what a normalized status answer leaves us unable to act on."""
    if status.unrecognized:
        return status.unrecognized
    if status.state is ProviderState.UNKNOWN:
        return f"unknown status {status.raw_status!r}"
    if status.state is ProviderState.SUCCEEDED and not status.result_urls:
        return "finished without a recognisable video URL" + (
            f" ({status.error_message})" if status.error_message else ""
        )
    return None


class ProbeOutcome(StrEnum):
    KEY_ACCEPTED = "key_accepted"
    KEY_REFUSED = "key_refused"
    INCONCLUSIVE = "inconclusive"


class ProbeReport(BaseModel):
    """What the cheapest documented call told about an API key (`kling-relay probe`)."""

    model_config = ConfigDict(frozen=True)

    outcome: ProbeOutcome
    detail: str
    balance: float | None = None  # credits left, where the provider has a balance endpoint


# A task no provider holds: asked about when a provider has no cheaper call that needs a valid key.
PROBE_TASK_ID = "kling-relay-probe-no-such-task"


class Provider(ABC):
    """One reseller's Kling 2.6 API. `http` is injected; tests pass an httpx mock transport."""

    name: ClassVar[ProviderName]
    capabilities: ClassVar[Capabilities]

    def __init__(self, endpoint: ProviderEndpoint, api_key: str, http: httpx.Client) -> None:
        if not api_key:
            raise ValueError(f"{self.name}: an API key is required")
        self.endpoint = endpoint
        self.api_key = api_key
        self.http = http

    @classmethod
    def from_settings(cls, settings: Settings, credentials: ProviderCredentials, http: httpx.Client) -> Self | None:
        """The adapter as deployed (its endpoint, key and options), or None when no API key is configured for it."""
        api_key = credentials.key_for(cls.name)
        if api_key is None:
            return None
        return cls(settings.endpoint(cls.name), api_key, http, **cls.options(settings, credentials))

    @classmethod
    def options(cls, settings: Settings, credentials: ProviderCredentials) -> dict[str, Any]:
        """Keyword arguments this adapter takes beyond endpoint, key and client, read from the same sources."""
        return {}

    # -- what subclasses provide ---------------------------------------------------------------

    @abstractmethod
    def build_submit(self, request: JobRequest, callback_url: str | None) -> httpx.Request:
        """The provider's create-task request (callback_url only used where callbacks exist)."""

    @abstractmethod
    def parse_submit(self, response: httpx.Response) -> SubmitResult:
        """The task id (and estimate) from a create answer; `ProviderError` for error envelopes."""

    @abstractmethod
    def build_status(self, task_id: str) -> httpx.Request:
        """The provider's task-status request."""

    @abstractmethod
    def parse_status(self, response: httpx.Response, task_id: str) -> TaskStatus:
        """A status answer about `task_id` (the task asked about), normalized; `ProviderError` for error envelopes."""

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        """A callback body read as a status hint. Providers without callbacks reject every call."""
        raise CallbackRejectedError(f"{self.name} does not send callbacks")

    def verify_callback(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:  # noqa: B027
        """Provider-level callback authentication where the provider offers it (Kie); others have none.

        The per-job callback token is checked for every provider before this is called.
        """

    def estimate_cost(self, request: JobRequest) -> Cost | None:
        """Expected price in provider credits where a price is known."""
        return None

    def validate(self, request: JobRequest) -> list[Violation]:
        return self.capabilities.check(request)

    def require_supported(self, request: JobRequest) -> None:
        """Refuse to build a request this provider cannot honour (routing checks first; this fails closed)."""
        violations = self.validate(request)
        if violations:
            raise UnsupportedRequestError(
                "; ".join(violation.message for violation in violations),
                details=[violation.model_dump() for violation in violations],
            )

    # -- probing a key (kling-relay probe) -----------------------------------------------------

    def build_probe(self) -> httpx.Request:
        """The cheapest documented call that needs a valid key: by default, the status of a task that does not
        exist (read for the authentication answer). Providers with a balance endpoint use that instead."""
        return self.build_status(PROBE_TASK_ID)

    def read_probe(self, response: httpx.Response) -> ProbeReport:
        try:
            if not response.is_success:
                raise self.http_error(response)
            self.parse_status(response, PROBE_TASK_ID)
        except ProviderError as err:
            return probe_verdict(err)
        return ProbeReport(
            outcome=ProbeOutcome.KEY_ACCEPTED, detail="a status query for a task that does not exist was answered"
        )

    def probe(self, *, timeout: float | None = None) -> ProbeReport:
        """Check the configured key with `build_probe`; transport failures raise `ProviderError`."""
        return self.read_probe(self.send_raw(self.build_probe(), timeout=timeout))

    # -- shared plumbing -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.endpoint.base_url}{path}"

    def json_request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> httpx.Request:
        return self.http.build_request(method, self.url(path), json=body, params=params, headers=self.auth_headers())

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}

    def submit(self, request: JobRequest, callback_url: str | None, *, timeout: float | None = None) -> SubmitResult:
        try:
            response = self.send(self.build_submit(request, callback_url), timeout=timeout)
            return self.parse_submit(response)
        except ProviderError as err:
            # A success answer we cannot read may still stand for a task the provider created; an error
            # the provider stated inside it (Pixwith's refusals come with HTTP 200) created nothing.
            if err.unreadable:
                err.maybe_accepted = True
            # There is no task yet to be unknown: a 404 on create is a route or model this account cannot
            # reach, which another provider may well not share.
            if err.kind is ErrorKind.NOT_FOUND:
                err.kind = ErrorKind.UNAVAILABLE
            raise

    def status(self, task_id: str, *, timeout: float | None = None) -> TaskStatus:
        """The task's status; an answer we cannot act on comes back with `unrecognized` set, never as final."""
        response = self.send(self.build_status(task_id), timeout=timeout)
        try:
            status = self.parse_status(response, task_id)
        except ProviderError as err:
            if err.unrecognized and err.answer is None:
                err.answer = self.excerpt(response)
            raise
        reason = unrecognized_reason(status)
        if reason is None:
            return status
        return status.model_copy(update={"unrecognized": reason, "answer": status.answer or self.excerpt(response)})

    def excerpt(self, response: httpx.Response) -> str:
        """The answer's body, redacted (our key and any secrets, tokens or signed URL queries in it removed)."""
        return answer_excerpt(response.content, secrets=(self.api_key,))

    def send(self, request: httpx.Request, *, timeout: float | None = None) -> httpx.Response:
        """Send, turning transport failures and non-2xx answers into `ProviderError`s."""
        response = self.send_raw(request, timeout=timeout)
        if response.is_success:
            return response
        raise self.http_error(response)

    def send_raw(self, request: httpx.Request, *, timeout: float | None = None) -> httpx.Response:
        """Send, turning transport failures into `ProviderError`s; any HTTP answer is returned as it came."""
        limit = httpx.Timeout(
            timeout if timeout is not None else self.endpoint.read_timeout,
            connect=min(self.endpoint.connect_timeout, timeout or self.endpoint.connect_timeout),
        )
        request.extensions["timeout"] = limit.as_dict()
        try:
            return self.http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ProviderError(self.name, ErrorKind.RETRYABLE, f"unreachable ({type(exc).__name__})") from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise ProviderError(
                self.name, ErrorKind.RETRYABLE, f"no answer ({type(exc).__name__})", maybe_accepted=True
            ) from exc

    def http_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        return ProviderError(
            self.name,
            kind_for_status(status),
            error_text(response) or f"HTTP {status}",
            http_status=status,
            provider_code=str(status),
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )

    def envelope_error(self, code: int | str, message: str | None, response: httpx.Response) -> ProviderError:
        """An error reported inside a 2xx answer's JSON envelope (`code` other than success)."""
        numeric = ascii_int(code) or 0
        kind = kind_for_status(numeric) if numeric >= 400 else ErrorKind.REJECTED
        return ProviderError(
            self.name,
            kind,
            message or f"error code {code}",
            http_status=response.status_code,
            provider_code=str(code),
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )

    def read_json(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object; a non-JSON 2xx answer is a transient provider fault."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._unreadable("answer is not JSON", response) from exc
        except RecursionError as exc:
            raise self.malformed("JSON nested too deeply to read", response) from exc
        except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits)
            raise self.malformed(f"JSON not readable: {exc}", response) from exc
        if not isinstance(data, dict):
            raise self._unreadable("answer is not a JSON object", response)
        return data

    def answered_task_id(self, answered: str | None, asked: str, response: httpx.Response) -> str:
        """The task a status answer is about; an answer about another task than the one asked is malformed.

        An answer that names no task is read as being about the one asked.
        """
        if answered and answered != asked:
            raise self.malformed(f"status is for task {answered!r}, not {asked!r}", response)
        return asked

    def malformed(self, what: str, response: httpx.Response | None = None) -> ProviderError:
        """A JSON answer in a shape we do not know: unrecognized, with the answer kept (redacted)."""
        error = self._unreadable(f"unexpected answer: {what}", response)
        error.unrecognized = True
        error.answer = self.excerpt(response) if response is not None else None
        return error

    def unrecognized(
        self, message: str, response: httpx.Response, *, provider_code: str | None = None
    ) -> ProviderError:
        """An error the provider stated in words or codes we do not know the meaning of."""
        return ProviderError(
            self.name,
            ErrorKind.UNRECOGNIZED,
            message,
            http_status=response.status_code,
            provider_code=provider_code,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            answer=self.excerpt(response),
        )

    def _unreadable(self, message: str, response: httpx.Response | None) -> ProviderError:
        return ProviderError(
            self.name,
            ErrorKind.RETRYABLE,
            message,
            http_status=response.status_code if response is not None else None,
            unreadable=True,
        )


def probe_verdict(err: ProviderError) -> ProbeReport:
    """What an error answer to a probe says about the key."""
    said = f"{err.message} (HTTP {err.http_status}, code {err.provider_code})"
    if err.kind is ErrorKind.NOT_FOUND:
        return ProbeReport(outcome=ProbeOutcome.KEY_ACCEPTED, detail=f"the key was accepted; the provider said: {said}")
    if err.kind is ErrorKind.UNAVAILABLE:
        return ProbeReport(outcome=ProbeOutcome.KEY_REFUSED, detail=f"the key was refused or is not allowed: {said}")
    return ProbeReport(
        outcome=ProbeOutcome.INCONCLUSIVE, detail=f"the answer does not say whether the key works: {said}"
    )


def error_text(response: httpx.Response) -> str | None:
    """The human message in an error answer, wherever this provider puts it."""
    try:
        data = response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, or an integer too long to convert
        text = response.text.strip()
        return text[:300] or None
    if isinstance(data, dict):
        for key in ("msg", "message", "error_message", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:300]
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, str):
                return message[:300]
        if isinstance(error, str):
            return error[:300]
    return None


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date (one reading for providers and webhooks)."""
    return read_retry_after(value, now=utcnow())


def clamp_progress(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, min(100, int(value)))


def motion_control_cost(request: JobRequest, credits_per_second: float, basis: str) -> Cost | None:
    """A per-second price for motion control: the output is as long as the reference video.

    With the video's length measured, the price of its whole seconds; without it, the most the orientation
    allows, said to be an upper bound.
    """
    motion = request.motion_control
    if motion is None:
        return None
    if motion.video_seconds is None:
        _, longest = reference_seconds_allowed(motion.character_orientation)
        return Cost(
            amount=credits_per_second * longest,
            basis=f"{basis}; at most {longest} s (the reference video's length could not be read)",
        )
    seconds = max(1, math.ceil(motion.video_seconds - 1e-9))
    return Cost(amount=credits_per_second * seconds, basis=f"{basis}; {seconds} s (the reference video's length)")
