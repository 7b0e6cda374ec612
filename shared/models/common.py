"""Small types shared by every model: provider names, statuses, ids, URLs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, HttpUrl, PlainSerializer, StringConstraints

ProviderName = Literal["vidgo", "kie", "aimlapi", "pixwith", "apimart"]
ProviderChoice = Literal["auto", "vidgo", "kie", "aimlapi", "pixwith", "apimart"]
PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _no_repeats(value: tuple[ProviderName, ...]) -> tuple[ProviderName, ...]:
    if len(set(value)) != len(value):
        raise ValueError("providers must not repeat")
    return value


# A list of providers, also written "kie,vidgo" (environment variables, CDK context).
ProviderList = Annotated[tuple[ProviderName, ...], BeforeValidator(_split_csv), AfterValidator(_no_repeats)]

AspectRatio = Literal["16:9", "9:16", "1:1"]
Quality = Literal["std", "pro"]
Duration = Literal[5, 10]


class JobStatus(StrEnum):
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    ARCHIVING = "archiving"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED})

# Id patterns are matched whole. pydantic (models, path and query parameters) reads `$` as the end of the
# text, as JSON Schema does; Python's `re` lets `$` match before a trailing newline, so code matching ids
# itself uses `JOB_ID.fullmatch`, never `re.match` with the anchored pattern.
JOB_ID = re.compile(r"job_[0-9a-hjkmnp-tv-z]{26}")
JOB_ID_PATTERN = f"^{JOB_ID.pattern}$"
JobId = Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)]
TenantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


# A URL we will fetch, post to, or hand to a provider. Scheme and address rules depend on the
# mode (local mode allows the loopback emulator), so they are checked by `shared.urlguard` at use.
Url = Annotated[HttpUrl, PlainSerializer(str, return_type=str)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: v.isoformat().replace("+00:00", "Z"), return_type=str),
]


def utcnow() -> datetime:
    return datetime.now(UTC)
