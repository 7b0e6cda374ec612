"""Dispatch on the local stack: jobs admitted at once, then handed to providers as they allow.

A provider's Retry-After holds every job back from it until then; a job no provider takes before its
deadline fails `no_provider_available` with every attempt; a job canceled while waiting is never sent;
each job's place in flight is given back when its task ends. (Limiter contention from 300 concurrent jobs
is proven against the pacer itself, with threads on one table: tests/unit/pacing/test_pacer.py.)
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shared.models.common import utcnow
from shared.models.job import JobRecord
from shared.pacing.pacer import Pacer
from shared.services.transitions import Change, settle
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def submits(rig: Rig, provider: str) -> int:
    return rig.emulator.stats()[provider].submits  # type: ignore[index]


def waiting(rig: Rig, job_id: str, timeout: float = 20) -> JobRecord:
    def found() -> JobRecord | None:
        record = rig.record(job_id)
        return record if record.waiting is not None else None

    record: JobRecord = rig.wait_for(found, timeout, f"job {job_id} waiting for a provider")
    return record


def pacer(rig: Rig) -> Pacer:
    host = rig.host("dispatch")
    return Pacer(rig.stack.table_name, rig.stack.aws.client("dynamodb"), host.runtime.settings.provider_limit)


def test_a_retry_after_holds_every_job_back_from_that_provider_until_it_passes(system: Rig) -> None:
    tag = tagged("retry after")
    first_prompt, second_prompt = f"{tag} first", f"{tag} second"
    system.emulator.add_fault(
        "submit_error", provider="kie", match_prompt=first_prompt, status=429, retry_after=4, times=1
    )

    first = system.post_job({"provider": "kie", "prompt": first_prompt})
    assert first.status_code == 202, first.text
    held = waiting(system, first.json()["id"])
    [refused] = held.attempts
    assert (refused.http_status, refused.retry_after_seconds) == (429, 4)
    second = system.post_job({"provider": "kie", "prompt": second_prompt})
    assert second.status_code == 202, second.text
    assert waiting(system, second.json()["id"]).waiting.reason.value == "paused"  # type: ignore[union-attr]

    ids = [first.json()["id"], second.json()["id"]]
    done = system.wait_terminal(ids)
    first_done, second_done = done[ids[0]], done[ids[1]]
    assert [a.outcome.value for a in first_done.attempts] == ["unavailable", "accepted"]
    assert [a.outcome.value for a in second_done.attempts] == ["accepted"]  # never sent while Kie asked for quiet
    for record in (first_done, second_done):
        assert (record.attempts[-1].at - refused.at).total_seconds() >= 4
    system.check({job_id: Expect("succeeded", provider="kie") for job_id in ids})
    # Both tasks ended: their places at Kie were given back by the stream consumer.
    system.wait_for(lambda: pacer(system).in_flight("kie") == 0, 20, "Kie's places in flight given back")


def test_the_deadline_reached_while_waiting_fails_the_job_with_every_attempt(system: Rig) -> None:
    prompt = tagged("nobody takes it")
    system.emulator.add_fault("submit_error", provider="aimlapi", match_prompt=prompt, status=503)

    admitted = system.post_job({"provider": "aimlapi", "prompt": prompt, "quality": "pro"})
    assert admitted.status_code == 202, admitted.text
    job = waiting(system, admitted.json()["id"])
    # The deadline comes early (an hour is the default; the waits are the same either way).
    soon = utcnow() + timedelta(seconds=3)
    settle(system.jobs, job, lambda current: Change(None, {"deadline_at": soon}))

    failed = system.wait_terminal([job.id], timeout=30)[job.id]
    assert failed.status.value == "failed"
    assert failed.error is not None
    assert failed.error.code.value == "no_provider_available"
    assert failed.attempts
    assert {(a.provider, a.outcome.value, a.http_status) for a in failed.attempts} == {("aimlapi", "unavailable", 503)}
    sent = submits(system, "aimlapi")
    time.sleep(3)
    assert submits(system, "aimlapi") == sent  # nothing more once it failed
    system.check({job.id: Expect("failed", error="no_provider_available", provider_task=False)})


def test_a_job_canceled_while_waiting_is_never_sent_afterwards(system: Rig) -> None:
    prompt = tagged("canceled while waiting")
    system.emulator.add_fault("submit_error", provider="apimart", match_prompt=prompt, status=503)

    admitted = system.post_job({"provider": "apimart", "prompt": prompt, "quality": "std"})
    assert admitted.status_code == 202, admitted.text
    job = waiting(system, admitted.json()["id"])
    canceled = system.api.cancel(job.id)
    assert canceled["status"] == "canceled"
    assert canceled["waiting"] is None
    sent = submits(system, "apimart")
    system.emulator.clear_faults()  # apimart would take it now: it must still never be sent

    time.sleep(8)  # longer than the longest local dispatch wait (5 s)
    assert submits(system, "apimart") == sent
    assert not [task for task in system.emulator.tasks("apimart") if task.prompt == prompt]
    record = system.record(job.id)
    assert record.status.value == "canceled"
    assert {a.outcome.value for a in record.attempts} == {"unavailable"}
    system.check({job.id: Expect("canceled", error="canceled", provider_task=False)})
