"""Provider reports applied through `transitions.observe` in any order, from fresh or stale reads.

Whatever the interleaving (queued, running, succeeded, failed, canceled, unknown, with repeats,
about our task or another), the stored job never moves backwards, never leaves a terminal state,
reaches `archiving` at most once, and never forgets progress or the task it adopted.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.models.common import JobStatus
from shared.models.job import JobRecord
from shared.providers.base import ProviderState, TaskStatus
from shared.repository.jobs import JobRepository, task_claim_key
from shared.services.transitions import observe
from tests.fixtures.jobs import build_job

TASK = "task-ours"
OTHER_TASK = "task-someone-elses"
RESULT = "https://cdn.example.com/result.mp4"
RANK = {JobStatus.SUBMITTING: 0, JobStatus.QUEUED: 1, JobStatus.RUNNING: 2, JobStatus.ARCHIVING: 3}
TERMINAL_RANK = 4

reports = st.builds(
    TaskStatus,
    task_id=st.sampled_from([TASK, TASK, TASK, OTHER_TASK]),
    state=st.sampled_from(list(ProviderState)),
    raw_status=st.sampled_from(["queuing", "generating", "success", "fail", "weird"]),
    progress=st.none() | st.integers(min_value=0, max_value=100),
    result_urls=st.sampled_from([(), (RESULT,)]),
    error_message=st.none() | st.just("the provider said no"),
    credits_used=st.none() | st.integers(min_value=0, max_value=50_000).map(lambda cents: cents / 100),
)
# Each step: a report, how stale the job read it is applied to is (0 = the latest), and how many
# times it is delivered.
steps = st.lists(
    st.tuples(reports, st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=3)),
    min_size=1,
    max_size=20,
)
starts = st.sampled_from([JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RUNNING])


def rank(status: JobStatus) -> int:
    return TERMINAL_RANK if status.terminal else RANK[status]


def own(report: TaskStatus, job: JobRecord) -> TaskStatus:
    """The report with its task id made this job's: a provider task belongs to one job, and examples share a table."""
    return report.model_copy(update={"task_id": f"{report.task_id}-{job.id}"})


def start_job(jobs: JobRepository, status: JobStatus) -> JobRecord:
    # Examples share the table: the provider tasks an earlier example's job claimed are free again for this one.
    for task_id in (TASK, OTHER_TASK):
        jobs.client.delete_item(TableName=jobs.table_name, Key=task_claim_key("vidgo", task_id))
    job = build_job(provider="vidgo")
    jobs.create(job)
    if status is JobStatus.SUBMITTING:
        return job
    job = jobs.transition(job, JobStatus.QUEUED, provider_task_id=f"{TASK}-{job.id}")
    return jobs.transition(job, JobStatus.RUNNING) if status is JobStatus.RUNNING else job


def read(jobs: JobRepository, job_id: str) -> JobRecord:
    found = jobs.get(job_id)
    assert found is not None
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=starts, plan=steps)
def test_any_interleaving_of_reports_only_moves_the_job_forward(
    jobs: JobRepository, start: JobStatus, plan: list[tuple[TaskStatus, int, int]]
) -> None:
    job = start_job(jobs, start)  # a fresh job per example: examples never share state
    seen = [job]  # every stored version, in order; stale reads are taken from here
    archived = 0
    for generic, staleness, deliveries in plan:
        report = own(generic, job)
        for _ in range(deliveries):
            basis = seen[max(0, len(seen) - 1 - staleness)]
            returned = observe(jobs, basis, report, "poll")
            stored = read(jobs, job.id)
            # The stored job, or the read it was given when that read called for no change (a decision
            # that is a no-op on a stale read is a no-op on the fresh one too, so nothing is lost).
            assert returned in (stored, basis)
            if returned != stored:
                assert observe(jobs, stored, report, "poll") == stored
                assert read(jobs, job.id) == stored
            previous = seen[-1]
            if stored.version == previous.version:
                assert stored == previous
                continue
            assert stored.version == previous.version + 1  # one report, at most one write
            check_step(previous, stored, report)
            archived += stored.status is JobStatus.ARCHIVING and previous.status is not JobStatus.ARCHIVING
            seen.append(stored)
    assert archived <= 1


def check_step(previous: JobRecord, stored: JobRecord, report: TaskStatus) -> None:
    assert not previous.terminal, "a terminal job changed"
    assert previous.status is not JobStatus.ARCHIVING, "a provider report touched an archiving job"
    assert rank(stored.status) >= rank(previous.status), f"{previous.status} -> {stored.status}"
    if previous.provider_task_id is not None:
        assert stored.provider_task_id == previous.provider_task_id
        assert report.task_id == previous.provider_task_id, "a report about another task changed the job"
    else:
        assert stored.provider_task_id == report.task_id
        assert stored.status is not JobStatus.SUBMITTING, "a task the provider reported on stayed submitting"
    if previous.progress is not None and stored.progress is not None:
        assert stored.progress >= previous.progress
    if stored.status is JobStatus.ARCHIVING:
        assert report.state is ProviderState.SUCCEEDED
        assert stored.result_urls == report.result_urls != ()
    if stored.terminal:
        assert stored.status is JobStatus.FAILED  # a provider report only ever ends a job as failed
        assert report.state.terminal
        assert stored.error is not None
        assert stored.completed_at is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(reports, min_size=1, max_size=10), finished=st.sampled_from(["archiving", "failed", "canceled"]))
def test_nothing_a_provider_reports_changes_a_finished_or_archiving_job(
    jobs: JobRepository, plan: list[TaskStatus], finished: str
) -> None:
    job = start_job(jobs, JobStatus.RUNNING)
    extra: dict[str, Any] = {"result_urls": (RESULT,)} if finished == "archiving" else {}
    job = jobs.transition(job, JobStatus(finished), **extra)
    for report in plan:
        assert observe(jobs, job, own(report, job), "callback") == job
    assert read(jobs, job.id) == job


@pytest.mark.parametrize("credits", [1e-131, 1e130, -5.0])
def test_a_reported_credit_amount_outside_dynamodbs_range_does_not_block_the_job(
    jobs: JobRepository, credits: float
) -> None:
    job = start_job(jobs, JobStatus.RUNNING)
    report = TaskStatus(
        task_id=job.provider_task_id or TASK,
        state=ProviderState.SUCCEEDED,
        raw_status="completed",
        result_urls=(RESULT,),
        credits_used=credits,
    )

    stored = observe(jobs, job, report, "callback")
    assert stored.status is JobStatus.ARCHIVING
    assert stored.completed_by == "callback"
    if credits < 0 or credits > 1e12:
        assert stored.cost == job.cost  # the estimate stays; an unstorable figure is dropped
    else:
        assert stored.cost is not None
        assert stored.cost.amount == 0  # below a millionth of a credit is nothing
