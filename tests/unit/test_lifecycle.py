"""The job state machine: terminal statuses never change and nothing moves backwards."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidTransitionError
from shared.lifecycle import ALLOWED, can_transition, check_transition, is_terminal
from shared.models.common import TERMINAL_STATUSES, JobStatus

HAPPY_PATH = [JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.ARCHIVING, JobStatus.SUCCEEDED]
ENDINGS = {JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED}


def _position(status: JobStatus) -> int:
    return HAPPY_PATH.index(status) if status in HAPPY_PATH else len(HAPPY_PATH)


def test_every_status_has_a_rule() -> None:
    assert set(ALLOWED) == set(JobStatus)


def test_happy_path_is_allowed_step_by_step() -> None:
    for current, target in itertools.pairwise(HAPPY_PATH):
        check_transition(current, target)


@pytest.mark.parametrize("status", sorted(set(JobStatus) - TERMINAL_STATUSES))
def test_any_live_job_can_end(status: JobStatus) -> None:
    for ending in ENDINGS:
        assert can_transition(status, ending)


def test_terminal_statuses_are_exactly_the_four_endings() -> None:
    assert {s for s in JobStatus if is_terminal(s)} == ENDINGS | {JobStatus.SUCCEEDED}


def test_only_archiving_leads_to_succeeded() -> None:
    assert [s for s in JobStatus if can_transition(s, JobStatus.SUCCEEDED)] == [JobStatus.ARCHIVING]


def test_refusal_is_typed_and_names_both_statuses() -> None:
    with pytest.raises(InvalidTransitionError) as caught:
        check_transition(JobStatus.SUCCEEDED, JobStatus.RUNNING)
    assert (caught.value.current, caught.value.target) == ("succeeded", "running")
    assert caught.value.status_code == 409


@given(st.lists(st.sampled_from(list(JobStatus)), max_size=40))
def test_no_sequence_of_events_changes_a_terminal_job_or_moves_back(events: list[JobStatus]) -> None:
    status = JobStatus.SUBMITTING
    for target in events:
        before = status
        if can_transition(status, target):
            status = target
        else:
            with pytest.raises(InvalidTransitionError):
                check_transition(status, target)
        if is_terminal(before):
            assert status == before
        assert _position(status) >= _position(before)
        assert status == before or _position(status) > _position(before)
