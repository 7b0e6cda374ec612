"""The job state machine: which status may follow which.

`submitting` -> `queued` -> `running` -> `archiving` -> `succeeded`; any non-terminal status may
also end in `failed`, `timed_out` or `canceled`. A callback may overtake the submit answer, so a
`submitting` job may move straight on. Nothing moves backwards and terminal statuses never change.
"""

from __future__ import annotations

from shared.errors import InvalidTransitionError
from shared.models.common import TERMINAL_STATUSES, JobStatus

S = JobStatus

_ENDINGS = frozenset({S.FAILED, S.TIMED_OUT, S.CANCELED})

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.SUBMITTING: frozenset({S.QUEUED, S.RUNNING, S.ARCHIVING}) | _ENDINGS,
    S.QUEUED: frozenset({S.RUNNING, S.ARCHIVING}) | _ENDINGS,
    S.RUNNING: frozenset({S.ARCHIVING}) | _ENDINGS,
    S.ARCHIVING: frozenset({S.SUCCEEDED}) | _ENDINGS,
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMED_OUT: frozenset(),
    S.CANCELED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in ALLOWED[current]


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if not can_transition(current, target):
        raise InvalidTransitionError(current.value, target.value)


def is_terminal(status: JobStatus) -> bool:
    return status in TERMINAL_STATUSES
