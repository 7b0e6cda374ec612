"""What each emulated provider API supplies: routes, auth, validation, answer and error shapes."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from local.provider_emulator.limits import Refusal
from local.provider_emulator.tasks import Phase, TaskSnapshot
from shared.models.common import ProviderName

FAULT_MESSAGES: dict[int, str] = {
    400: "Bad request",
    401: "Invalid or missing API key",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not found",
    422: "Validation error",
    429: "Too many requests, please slow down",
    455: "Service unavailable: system maintenance",
    500: "Internal server error",
    501: "Generation failed",
    502: "Bad gateway",
    503: "Service unavailable",
    505: "Function disabled",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


class Operation(StrEnum):
    SUBMIT = "submit"
    STATUS = "status"
    CREDITS = "credits"  # the account's balance, where the provider has such an endpoint


@dataclass(frozen=True)
class Incoming:
    """One request below the provider's mount point (`path` starts with `/`)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class SubmitSpec:
    """The parts of a valid submit body the emulator acts on."""

    model: str
    prompt: str
    callback_url: str | None = None
    num_outputs: int = 1
    duration: int = 5


@dataclass(frozen=True)
class CallbackPolicy:
    retry_delays: tuple[float, ...]  # seconds before each retry of a failed delivery
    timeout: float  # seconds the receiver gets to answer one attempt
    signed: bool


class ProviderApi(ABC):
    name: ClassVar[ProviderName]
    callbacks: ClassVar[CallbackPolicy | None] = None
    validation_status: ClassVar[int] = 400
    # How many shapes of its answers the provider's docs show (see `vary` and each `status_body`); with the
    # control setting `variants` on, tasks and error answers rotate through them.
    variants: ClassVar[int] = 1

    def vary(self, body: Any, variant: int) -> Any:
        """An answer's envelope in shape `variant` (every answer: submit, status, errors, callbacks)."""
        return body

    # -- routing and auth ------------------------------------------------------------------------

    @abstractmethod
    def operation(self, method: str, path: str) -> Operation | None:
        """Which operation a request is, or None for a route this provider does not have."""

    def authorized(self, request: Incoming, key: str) -> bool:
        return request.header("Authorization") == f"Bearer {key}"

    # -- submit ----------------------------------------------------------------------------------

    @abstractmethod
    def prompt_of(self, body: object) -> str | None:
        """The prompt of a possibly invalid body, for matching faults."""

    @abstractmethod
    def parse_submit(self, body: object) -> SubmitSpec:
        """Validate a submit body; raises `Rejection` naming the field and rule."""

    @abstractmethod
    def new_task_id(self, spec: SubmitSpec, now: float) -> str: ...

    @abstractmethod
    def submit_reply(self, task_id: str, spec: SubmitSpec, now: float, job_seconds: float) -> Reply: ...

    # -- status ----------------------------------------------------------------------------------

    @abstractmethod
    def status_task_id(self, request: Incoming) -> str:
        """The task a status query asks about; raises `Rejection` if the query names none."""

    @abstractmethod
    def status_body(self, task: TaskSnapshot) -> dict[str, Any]: ...

    @abstractmethod
    def raw_status(self, phase: Phase, fraction: float) -> str | int:
        """The provider's own status value for a phase (Kie splits its queue in two)."""

    def credits_body(self, credits: float) -> dict[str, Any]:
        """The answer of the balance endpoint (only providers whose `operation` routes one to CREDITS)."""
        raise NotImplementedError(f"{self.name} has no balance endpoint")

    # -- errors ----------------------------------------------------------------------------------

    @abstractmethod
    def error(self, status: int, message: str, *, path: str = "") -> Reply:
        """An error in this provider's own style."""

    def fault_error(self, status: int, *, path: str = "") -> Reply:
        """The answer to an injected `submit_error`/`status_error` with this status."""
        return self.error(status, FAULT_MESSAGES.get(status, f"HTTP {status}"), path=path)

    def rate_limited(self, refusal: Refusal, *, path: str = "") -> Reply:
        """A submit over the provider's limits: its 429 (Pixwith: its HTTP 200 `code: 0`), no Retry-After
        unless the limit asks for one."""
        reply = self.error(429, refusal.message, path=path)
        if refusal.retry_after is None:
            return reply
        return Reply(reply.status, reply.body, {**reply.headers, "Retry-After": str(refusal.retry_after)})

    def not_found(self, task_id: str, path: str = "") -> Reply:
        return self.error(404, f"task {task_id!r} not found", path=path)

    def unauthorized(self, path: str = "") -> Reply:
        return self.error(401, "Invalid or missing API key", path=path)

    # -- callbacks -------------------------------------------------------------------------------

    def callback_body(self, task: TaskSnapshot) -> dict[str, Any]:
        """The terminal callback: for both callback providers, the status answer itself."""
        return self.status_body(task)

    def stale_callback_body(self, task: TaskSnapshot) -> dict[str, Any]:
        """A callback contradicting the task's real end, as a late or reordered delivery would."""
        raise NotImplementedError(f"{self.name} sends no callbacks")
