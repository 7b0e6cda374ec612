"""Fault injection: what can be made to go wrong, and the book of active faults.

A fault matches a request or task by provider (None = any) and by a substring of the task's prompt
(None = any prompt), and is used up after `times` matches (None = never). When a fault is taken:

- per request: `latency` (submit, status query or download), `submit_error`, `status_error`, and the
  download faults `result_expired`, `download_slow`, `download_truncated`;
- once per task, when it ends: `generation_failed`, `result_size`;
- once per task, when its terminal callback is about to go out: the `callback_*` kinds.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from local.provider_emulator.media import min_result_bytes
from shared.models.common import ProviderName

CALLBACK_PROVIDERS: frozenset[ProviderName] = frozenset({"vidgo", "kie"})
# 401/402/422/429/455/500/505 are the documented ones; the rest are codes status endpoints answer with.
ErrorStatus = Literal[400, 401, 402, 403, 404, 422, 429, 455, 500, 501, 502, 503, 505]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName | None = None
    match_prompt: str | None = None
    times: int | None = Field(default=None, ge=1)


class _CallbackFault(_Fault):
    @model_validator(mode="after")
    def _only_callback_providers(self) -> _CallbackFault:
        if self.provider is not None and self.provider not in CALLBACK_PROVIDERS:
            raise ValueError(f"{self.provider} sends no callbacks; callback faults apply to vidgo and kie only")
        return self


F = TypeVar("F", bound=_Fault)


class LatencyFault(_Fault):
    kind: Literal["latency"]
    seconds: float = Field(gt=0, le=600)
    on: Literal["submit", "status", "download", "any"] = "any"


class SubmitErrorFault(_Fault):
    kind: Literal["submit_error"]
    status: ErrorStatus
    retry_after: int | None = Field(default=None, ge=0, le=86400)


class StatusErrorFault(_Fault):
    kind: Literal["status_error"]
    status: ErrorStatus
    retry_after: int | None = Field(default=None, ge=0, le=86400)


class GenerationFailedFault(_Fault):
    kind: Literal["generation_failed"]
    message: str = Field(default="video generation failed (emulated fault)", min_length=1, max_length=500)


class CallbackDropFault(_CallbackFault):
    kind: Literal["callback_drop"]


class CallbackDuplicateFault(_CallbackFault):
    kind: Literal["callback_duplicate"]
    count: int = Field(default=1, ge=1, le=20)


class CallbackDelayFault(_CallbackFault):
    kind: Literal["callback_delay"]
    seconds: float = Field(gt=0, le=600)


class CallbackOutOfOrderFault(_CallbackFault):
    kind: Literal["callback_out_of_order"]


class CallbackForgedFault(_CallbackFault):
    kind: Literal["callback_forged"]
    how: Literal["bad_signature", "stale_timestamp", "bad_token", "wrong_task"]
    age_seconds: int = Field(default=3600, ge=1, le=10**8)  # how old a stale_timestamp is

    @model_validator(mode="after")
    def _signature_needs_kie(self) -> CallbackForgedFault:
        if self.how in ("bad_signature", "stale_timestamp") and self.provider == "vidgo":
            raise ValueError(f"vidgo callbacks are unsigned; how={self.how!r} applies to kie only")
        return self

    @property
    def signature_only(self) -> bool:
        return self.how in ("bad_signature", "stale_timestamp")


class ResultExpiredFault(_Fault):
    kind: Literal["result_expired"]
    status: Literal[403, 404] = 403


class DownloadSlowFault(_Fault):
    kind: Literal["download_slow"]
    bytes_per_second: int = Field(ge=1)


class DownloadTruncatedFault(_Fault):
    kind: Literal["download_truncated"]
    after_bytes: int = Field(ge=0)


class ResultSizeFault(_Fault):
    kind: Literal["result_size"]
    bytes: int = Field(le=1 << 40)

    @model_validator(mode="after")
    def _large_enough(self) -> ResultSizeFault:
        if self.bytes < min_result_bytes():
            raise ValueError(f"bytes must be at least {min_result_bytes()} (the sample clip plus its tag box)")
        return self


Fault = Annotated[
    LatencyFault
    | SubmitErrorFault
    | StatusErrorFault
    | GenerationFailedFault
    | CallbackDropFault
    | CallbackDuplicateFault
    | CallbackDelayFault
    | CallbackOutOfOrderFault
    | CallbackForgedFault
    | ResultExpiredFault
    | DownloadSlowFault
    | DownloadTruncatedFault
    | ResultSizeFault,
    Field(discriminator="kind"),
]
FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)


class FaultEntry(BaseModel):
    """A fault as `GET /_control/faults` lists it."""

    id: str
    fault: Fault
    used: int
    remaining: int | None


class FaultBook:
    """The active faults, in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Fault, list[int]]] = {}
        self._next = 1

    def add(self, fault: Fault) -> str:
        with self._lock:
            fault_id = f"fault_{self._next}"
            self._next += 1
            self._entries[fault_id] = (fault, [0])
            return fault_id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            return self._entries.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self) -> list[FaultEntry]:
        with self._lock:
            return [
                FaultEntry(
                    id=fault_id,
                    fault=fault,
                    used=used[0],
                    remaining=None if fault.times is None else fault.times - used[0],
                )
                for fault_id, (fault, used) in self._entries.items()
            ]

    def take(
        self,
        kind: type[F],
        provider: ProviderName,
        prompt: str | None,
        *,
        on: str | None = None,
        forged_signature_ok: bool = True,
    ) -> F | None:
        """The first live fault of `kind` matching, counted as used once; None when none matches."""
        with self._lock:
            for fault, used in self._entries.values():
                if not isinstance(fault, kind):
                    continue
                if fault.times is not None and used[0] >= fault.times:
                    continue
                if fault.provider is not None and fault.provider != provider:
                    continue
                if fault.match_prompt is not None and (prompt is None or fault.match_prompt not in prompt):
                    continue
                if on is not None and isinstance(fault, LatencyFault) and fault.on not in ("any", on):
                    continue
                if not forged_signature_ok and isinstance(fault, CallbackForgedFault) and fault.signature_only:
                    continue
                used[0] += 1
                return fault
            return None
