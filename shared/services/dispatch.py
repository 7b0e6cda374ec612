"""Handing a recorded job to a provider: the first task of the job's workflow, run again after each wait.

One round offers the job to its candidates in order (a named provider is the only candidate; `auto` fails
over). A candidate is skipped while it is at its pace or in-flight limit (shared/pacing), and one that
answers 429/455/5xx/a timeout/insufficient credits is recorded as an attempt and the next is tried. When no
candidate took the job, the job waits (`waiting` on the stored job says why and until when) and the
workflow runs another round then; at the deadline it fails `no_provider_available` with every attempt.

A candidate's spent submit rate is not asked about again and again: when no candidate took the job and one
of them is only rate-limited (or paused), the job books that candidate's first free slot (the soonest among
them: `auto` spreads a burst over every provider at its own pace) and waits exactly until then; the round
at that time sends it without spending the rate again. A slot due within a second is waited for in the same
round.

Before each provider call the job is marked `handoff_at` (conditionally: a canceled job is never offered),
and the mark is cleared when the answer is recorded. A round that finds the mark set knows an earlier round
stopped mid-call, so the provider may hold a task: the job is not offered again anywhere, and the polling
loop applies the `submit_interrupted` rules (a callback adopts the task, else the job fails after the
grace period).
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ConfigurationError, RelayError
from shared.models.common import JobId, JobStatus, ProviderName
from shared.models.job import (
    Attempt,
    AttemptOutcome,
    Cost,
    ErrorCode,
    JobError,
    JobRecord,
    Waiting,
    WaitReason,
)
from shared.observability import logger
from shared.pacing.pacer import Grant, Refusal
from shared.providers.base import Provider, SubmitResult
from shared.providers.errors import ProviderError
from shared.runtime import Runtime
from shared.secrets import ProviderCredentials
from shared.services.routing import candidates
from shared.services.submit import callback_url, first_wait_seconds
from shared.services.transitions import Change, Decision, settle
from shared.settings import Settings

# Time kept back from the function's budget for recording the outcome after the last provider call.
RESERVE_SECONDS = 5.0
MIN_ATTEMPT_SECONDS = 3.0
# When the function's remaining time cuts a round short, the next round comes this soon.
SHORT_ROUND_SECONDS = 1
# A booked slot this close is waited for inside the round rather than in another workflow round.
IN_ROUND_WAIT_SECONDS = 1.0
HTTP_TOO_MANY_REQUESTS = 429
# Refusals that end at a known time the pacer can book a slot after.
BOOKABLE = frozenset({WaitReason.RATE_LIMITED, WaitReason.PAUSED})
REFUSAL_REASONS = {
    Refusal.PAUSED: WaitReason.PAUSED,
    Refusal.RATE_LIMITED: WaitReason.RATE_LIMITED,
    Refusal.AT_CAPACITY: WaitReason.AT_CAPACITY,
}


class Booking(BaseModel):
    """A submit slot the job holds at one provider: the rate is spent, the job goes at `at` (epoch seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderName
    at: float


class DispatchInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: JobId
    callback_base: str = ""
    rounds: int = Field(default=0, ge=0)
    booking: Booking | None = None


class DispatchOutput(BaseModel):
    job_id: str
    callback_base: str
    done: bool  # the job ended (or vanished): nothing left to track
    dispatched: bool  # a provider holds (or may hold) the job: the polling loop takes over
    wait_seconds: int = Field(ge=1)
    rounds: int
    polls: int = 0
    status: str
    booking: Booking | None = None  # carried to the next round, which sends the job in its slot


class _Hold:
    """Why one candidate could not take the job this round."""

    def __init__(self, provider: ProviderName, reason: WaitReason, retry_in: float | None) -> None:
        self.provider = provider
        self.reason = reason
        self.retry_in = retry_in


def dispatch_once(rt: Runtime, data: DispatchInput, *, budget_seconds: float = 60.0) -> DispatchOutput:
    """One dispatch round for one job."""
    job = rt.jobs.get(data.job_id)
    if job is None:
        logger.warning("dispatch found no job", job_id=data.job_id)
        return _output(data, None, done=True, dispatched=False, wait=1)
    if job.terminal:
        return _output(data, job, done=True, dispatched=False, wait=1)
    if job.status is not JobStatus.SUBMITTING or job.handoff_at is not None:
        return _to_polling(rt, data, job)
    if rt.clock() >= job.deadline_at:
        return _finished(rt, data, job, _give_up(job))

    credentials = rt.provider_credentials()
    try:
        order = candidates(job.request, rt.settings, credentials)
    except ConfigurationError:
        raise
    except RelayError as exc:  # the configuration changed since the job was admitted
        error = JobError(code=ErrorCode.NO_PROVIDER_AVAILABLE, message=exc.message)
        return _finished(rt, data, job, _fail_submitting(error))
    # A provider that may hold a task for this job (an interrupted call) is never offered it again.
    interrupted = {a.provider for a in job.attempts if a.outcome is AttemptOutcome.INTERRUPTED}
    order = [name for name in order if name not in interrupted]
    booking = data.booking if data.booking is not None and data.booking.provider in order else None
    if booking is not None:  # the provider holding the job's slot goes first
        order = [booking.provider, *(name for name in order if name != booking.provider)]
    round_ = _Round(rt, data, credentials, ends=time.monotonic() + budget_seconds - RESERVE_SECONDS, booking=booking)
    return round_.run(job, order)


class _Round:
    """Offering the job to each candidate in turn until one takes it."""

    def __init__(
        self,
        rt: Runtime,
        data: DispatchInput,
        credentials: ProviderCredentials,
        *,
        ends: float,
        booking: Booking | None = None,
    ) -> None:
        self.rt = rt
        self.data = data
        self.credentials = credentials
        self.ends = ends
        self.booking = booking
        self.holds: list[_Hold] = []
        self.last_error: ProviderError | None = None

    def run(self, job: JobRecord, order: list[ProviderName]) -> DispatchOutput:
        for index, name in enumerate(order):
            remaining = self.ends - time.monotonic()
            if index > 0 and remaining < MIN_ATTEMPT_SECONDS:
                return _wait(self.rt, self.data, job, self.holds, short=True)
            job, outcome = self.offer(job, name, remaining)
            if outcome is not None:
                return outcome
        if not self.holds:
            # Every candidate was offered the job and may hold it (interrupted calls): never offer it again.
            error = _interrupted_error(job, self.last_error)
            return _finished(self.rt, self.data, job, _fail_submitting(error))
        booking = self.book(job)
        if booking is not None and booking.at - self.rt.pacer.clock() <= IN_ROUND_WAIT_SECONDS:
            self.booking = booking
            job, outcome = self.offer(job, booking.provider, self.ends - time.monotonic())
            if outcome is not None:
                return outcome
            booking = None
        return _wait(self.rt, self.data, job, self.holds, booking=booking)

    def _acquire_booked(self, job: JobRecord, name: ProviderName) -> Grant:
        """The job's booked send, waiting in the round while the last window's sends leave room soon."""
        while True:
            grant = self.rt.pacer.acquire(name, job.id, booked=True)
            short = grant.retry_in is not None and grant.retry_in <= IN_ROUND_WAIT_SECONDS
            if grant.granted or grant.refusal is not Refusal.RATE_LIMITED or not short:
                return grant
            assert grant.retry_in is not None
            if self.ends - time.monotonic() - grant.retry_in < MIN_ATTEMPT_SECONDS:
                return grant
            time.sleep(grant.retry_in)

    def book(self, job: JobRecord) -> Booking | None:
        """The first free slot at the candidate whose rate (or pause) frees soonest, booked for the job."""
        paced = [h for h in self.holds if h.reason in BOOKABLE and h.retry_in is not None]
        if not paced:
            return None
        soonest = min(paced, key=lambda hold: hold.retry_in or 0.0)
        grant = self.rt.pacer.reserve(soonest.provider, not_after=job.deadline_at.timestamp())
        if not grant.granted or grant.at is None:
            return None
        return Booking(provider=soonest.provider, at=grant.at)

    def offer(self, job: JobRecord, name: ProviderName, remaining: float) -> tuple[JobRecord, DispatchOutput | None]:
        """Offer the job to one provider; an output when the round is over, None to try the next candidate."""
        rt, data = self.rt, self.data
        booked = self.booking is not None and self.booking.provider == name
        if booked:
            assert self.booking is not None
            early = self.booking.at - rt.pacer.clock()
            if early > IN_ROUND_WAIT_SECONDS + SHORT_ROUND_SECONDS:  # woken too soon: keep the slot, wait again
                return job, _wait(rt, data, job, [], booking=self.booking)
            if early > 0:
                time.sleep(early)
            self.booking = None  # a slot is used once, whatever comes of it
        grant: Grant = self._acquire_booked(job, name) if booked else rt.pacer.acquire(name, job.id)
        if not grant.granted:
            assert grant.refusal is not None
            if booked and grant.refusal is Refusal.RATE_LIMITED and grant.retry_in is not None:
                # Sends ahead of the job's slot came late: the slot stands, later by as much.
                moved = Booking(provider=name, at=rt.pacer.clock() + grant.retry_in)
                return job, _wait(rt, data, job, [], booking=moved)
            self.holds.append(_Hold(name, REFUSAL_REASONS[grant.refusal], grant.retry_in))
            return job, None
        adapter = rt.provider(name, self.credentials)
        job, handed = _hand_off(rt, job, name, adapter.estimate_cost(job.request))
        if not handed:  # canceled (or otherwise moved on) meanwhile: nothing is sent
            rt.pacer.release(name, job.id)
            return job, _settled(rt, data, job)
        try:
            result = _submit(rt, adapter, job, data.callback_base, remaining)
        except ProviderError as err:
            logger.warning("provider refused job", provider=name, kind=err.kind.value, status=err.http_status)
            job = settle(rt.jobs, job, _record_answer(_attempt(rt, name, err)))
            if not err.maybe_accepted:
                rt.pacer.release(name, job.id)  # nothing was created there
            if err.retry_after is not None and err.http_status == HTTP_TOO_MANY_REQUESTS:
                rt.pacer.pause(name, err.retry_after)
            self.last_error = err
            if job.status is not JobStatus.SUBMITTING:
                return job, _settled(rt, data, job)
            if err.maybe_accepted:
                return job, None  # it may hold a task: never offered again, the next candidate may take it
            if err.failover:
                self.holds.append(_Hold(name, WaitReason.PROVIDER_UNAVAILABLE, err.retry_after))
                return job, None
            return job, _finished(rt, data, job, _fail_submitting(_rejection(job, err)))
        return job, _settled(rt, data, _accepted(rt, job, name, result))


def _submit(rt: Runtime, adapter: Provider, job: JobRecord, callback_base: str, remaining: float) -> SubmitResult:
    base = rt.settings.public_base_url or callback_base
    url = None
    if adapter.capabilities.callbacks:
        if not base:
            raise ConfigurationError("no public base URL for provider callbacks")
        url = callback_url(rt, base, adapter.name, job.id)
    timeout = max(1.0, min(rt.settings.provider_read_timeout, remaining))
    return adapter.submit(job.request, url, timeout=timeout)


# -- stored changes ---------------------------------------------------------------------------------


def _hand_off(rt: Runtime, job: JobRecord, name: ProviderName, cost: Cost | None) -> tuple[JobRecord, bool]:
    """Mark the job as being offered to `name`; False when it may no longer be offered (canceled, taken)."""
    wrote = False

    def decide(current: JobRecord) -> Change | None:
        nonlocal wrote
        wrote = current.status is JobStatus.SUBMITTING and current.handoff_at is None
        if not wrote:
            return None
        return Change(None, {"provider": name, "cost": cost, "handoff_at": rt.clock(), "waiting": None})

    job = settle(rt.jobs, job, decide)
    return job, wrote


def _record_answer(attempt: Attempt) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.terminal:
            return None
        return Change(None, {"attempts": (*job.attempts, attempt), "handoff_at": None})

    return decide


def _accepted(rt: Runtime, job: JobRecord, name: ProviderName, result: SubmitResult) -> JobRecord:
    attempt = _attempt(rt, name, None)

    def decide(current: JobRecord) -> Change | None:
        fields = {
            "attempts": (*current.attempts, attempt),
            "provider_estimate_seconds": result.estimated_seconds,
            "handoff_at": None,
            "waiting": None,
        }
        if current.status is JobStatus.SUBMITTING:
            return Change(JobStatus.QUEUED, {**fields, "provider_task_id": result.task_id})
        # A callback overtook the answer and already moved the job on (it carried the same task id).
        return None if current.terminal else Change(None, fields)

    return settle(rt.jobs, job, decide)


def _attempt(rt: Runtime, name: ProviderName, err: ProviderError | None) -> Attempt:
    if err is None:
        return Attempt(provider=name, at=rt.clock(), outcome=AttemptOutcome.ACCEPTED)
    if err.maybe_accepted:
        outcome = AttemptOutcome.INTERRUPTED
    elif err.failover:
        outcome = AttemptOutcome.UNAVAILABLE
    else:
        outcome = AttemptOutcome.REJECTED
    return Attempt(
        provider=name,
        at=rt.clock(),
        outcome=outcome,
        http_status=err.http_status,
        error_code=err.provider_code,
        message=err.message,
        retry_after_seconds=err.retry_after,
    )


def _fail_submitting(error: JobError) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.status is not JobStatus.SUBMITTING or job.handoff_at is not None:
            return None
        return Change(JobStatus.FAILED, {"error": error, "waiting": None})

    return decide


def _rejection(job: JobRecord, err: ProviderError) -> JobError:
    if any(a.outcome is AttemptOutcome.INTERRUPTED for a in job.attempts):
        return _interrupted_error(job, err)
    return JobError(
        code=ErrorCode.PROVIDER_REJECTED,
        message=f"{err.provider} rejected the job: {err.message}",
        provider_code=err.provider_code,
    )


def _interrupted_error(job: JobRecord, err: ProviderError | None) -> JobError:
    # A provider may hold (and charge for) a task we never heard of.
    providers = sorted({a.provider for a in job.attempts if a.outcome is AttemptOutcome.INTERRUPTED})
    return JobError(
        code=ErrorCode.SUBMIT_INTERRUPTED,
        message=f"we could not confirm whether {', '.join(providers) or job.provider} accepted the job; "
        "no result will arrive. If the provider charged for it, its task can be found in the provider's console.",
        provider_code=err.provider_code if err else None,
    )


def _give_up(job: JobRecord) -> Decision:
    """The deadline came while no provider could take the job."""
    last = job.waiting
    reason = f" (last: {last.provider} {last.reason.value})" if last else ""
    error = JobError(
        code=ErrorCode.NO_PROVIDER_AVAILABLE,
        message=f"no provider could take the job before its deadline{reason}",
        provider_code=next((a.error_code for a in reversed(job.attempts) if a.error_code), None),
    )
    return _fail_submitting(error)


# -- waiting ----------------------------------------------------------------------------------------


def retry_delay(settings: Settings, rounds: int, holds: list[_Hold], rng: random.Random | None = None) -> float:
    """Full jitter over an exponentially growing spread, after the soonest a candidate said it may be free.

    A candidate with no known time (a 5xx without Retry-After, a full in-flight count) may be free at once,
    so it adds no floor; a paused or rate-limited one adds its time, so a Retry-After is always honoured when
    it is the only way forward.
    """
    known = [hold.retry_in for hold in holds]
    floor = 0.0 if not known or any(t is None for t in known) else min(t for t in known if t is not None)
    try:
        spread = min(settings.dispatch_retry_max_seconds, settings.dispatch_retry_base_seconds * 2**rounds)
    except OverflowError:
        spread = settings.dispatch_retry_max_seconds
    return floor + (rng or random).uniform(0, spread)


def _wait(
    rt: Runtime,
    data: DispatchInput,
    job: JobRecord,
    holds: list[_Hold],
    *,
    short: bool = False,
    booking: Booking | None = None,
) -> DispatchOutput:
    now = rt.clock()
    if booking is not None:
        # The Wait counts whole seconds: wake before the slot, the round waits out the rest.
        seconds = booking.at - rt.pacer.clock()
        wait = max(1, math.floor(seconds))
        reason = next((h.reason for h in holds if h.provider == booking.provider), WaitReason.RATE_LIMITED)
        waiting: Waiting | None = Waiting(
            reason=reason, provider=booking.provider, next_attempt_at=datetime.fromtimestamp(booking.at, UTC)
        )
    else:
        seconds = float(SHORT_ROUND_SECONDS) if short or not holds else retry_delay(rt.settings, data.rounds, holds)
        until_deadline = (job.deadline_at - now).total_seconds()
        wait = max(1, min(math.ceil(seconds), math.ceil(until_deadline) + 1))
        waiting = (
            Waiting(reason=holds[0].reason, provider=holds[0].provider, next_attempt_at=now + timedelta(seconds=wait))
            if holds
            else None
        )
    if waiting is not None:
        job = settle(rt.jobs, job, _mark_waiting(waiting))
        if job.status is not JobStatus.SUBMITTING or job.handoff_at is not None:
            return _settled(rt, data, job)
    logger.info("no provider could take the job yet", job_id=job.id, wait_seconds=wait, rounds=data.rounds + 1)
    output = _output(data, job, done=False, dispatched=False, wait=wait, rounds=data.rounds + 1)
    return output.model_copy(update={"booking": booking})


def _mark_waiting(waiting: Waiting) -> Decision:
    def decide(job: JobRecord) -> Change | None:
        if job.status is not JobStatus.SUBMITTING or job.handoff_at is not None:
            return None
        return Change(None, {"waiting": waiting})

    return decide


# -- outputs ----------------------------------------------------------------------------------------


def _output(
    data: DispatchInput,
    job: JobRecord | None,
    *,
    done: bool,
    dispatched: bool,
    wait: int,
    rounds: int | None = None,
) -> DispatchOutput:
    return DispatchOutput(
        job_id=data.job_id,
        callback_base=data.callback_base,
        done=done,
        dispatched=dispatched,
        wait_seconds=wait,
        rounds=data.rounds if rounds is None else rounds,
        status=job.status.value if job is not None else "missing",
    )


def _to_polling(rt: Runtime, data: DispatchInput, job: JobRecord) -> DispatchOutput:
    """A provider holds the job (or may: an interrupted handoff): the polling loop takes it from here."""
    if job.status is JobStatus.SUBMITTING and job.handoff_at is not None:
        # Look again once the grace period for an answer or a callback is over (poll.py decides then).
        elapsed = (rt.clock() - job.handoff_at).total_seconds()
        wait = max(1, math.ceil(rt.settings.submit_grace_seconds - elapsed))
    else:
        wait = first_wait_seconds(rt.settings, job.provider)
    return _output(data, job, done=False, dispatched=True, wait=wait)


def _settled(rt: Runtime, data: DispatchInput, job: JobRecord) -> DispatchOutput:
    if job.terminal:
        return _output(data, job, done=True, dispatched=False, wait=1)
    return _to_polling(rt, data, job)


def _finished(rt: Runtime, data: DispatchInput, job: JobRecord, decide: Decision) -> DispatchOutput:
    return _settled(rt, data, settle(rt.jobs, job, decide))
