"""A circuit breaker per webhook endpoint (tenant and URL): many consecutive failures pause the endpoint.

Closed: every message is attempted. After `FAILURES_TO_PAUSE` consecutive failed attempts the breaker opens:
for the next pause (1 minute, then 5, 30, 2 hours, 6 hours for each further opening) no attempt is made and the
endpoint's messages wait on the queue until the pause is over. Then it is half-open: one delivery takes the
trial (a conditional write, so concurrent deliveries agree on who), the others wait a little longer. A trial
that succeeds closes the breaker and forgets the failures; one that fails opens it again, for longer.

A paused endpoint costs nothing but a read per waiting message, so one tenant's dead endpoint neither holds the
deliver function's concurrency nor delays other tenants' deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.repository.endpoints import Endpoint, EndpointHealthRepository, EndpointState
from shared.webhooks.retry import LONGEST_PAUSE_SECONDS

FAILURES_TO_PAUSE = 5
PAUSES_SECONDS: tuple[int, ...] = (60, 5 * 60, 30 * 60, 2 * 3600, LONGEST_PAUSE_SECONDS)
# While one delivery holds the trial, the others wait this long past its deadline before looking again.
TRIAL_MARGIN_SECONDS = 20


def pause_after(opens: int) -> int:
    """The pause of the breaker's `opens`-th opening (0-based), the longest one from then on."""
    return PAUSES_SECONDS[min(opens, len(PAUSES_SECONDS) - 1)]


class Admission(StrEnum):
    ATTEMPT = "attempt"  # closed: deliver
    TRIAL = "trial"  # half-open, and this delivery holds the trial
    WAIT = "wait"  # paused, or another delivery holds the trial


@dataclass(frozen=True)
class Decision:
    admission: Admission
    state: EndpointState | None
    wait_until: float | None = None  # epoch seconds, for WAIT


@dataclass(frozen=True)
class Opened:
    until: float
    opens: int


class CircuitBreaker:
    def __init__(self, repository: EndpointHealthRepository, trial_seconds: float) -> None:
        self.repository = repository
        self.trial_seconds = trial_seconds

    def admit(self, endpoint: Endpoint, now: float) -> Decision:
        state = self.repository.get(endpoint)
        if state is None or state.opens == 0:
            return Decision(Admission.ATTEMPT, state)
        if state.paused(now):
            return Decision(Admission.WAIT, state, wait_until=state.paused_until)
        trial_ends = now + self.trial_seconds + TRIAL_MARGIN_SECONDS
        if self.repository.claim_trial(endpoint, now, trial_ends):
            return Decision(Admission.TRIAL, state)
        return Decision(Admission.WAIT, state, wait_until=max(state.trial_until, now) + TRIAL_MARGIN_SECONDS)

    def succeeded(self, endpoint: Endpoint, decision: Decision) -> bool:
        """The endpoint answered; True when that closed a breaker with failures on record."""
        if decision.state is None:
            return False
        self.repository.reset(endpoint)
        return True

    def failed(self, endpoint: Endpoint, now: float, reason: str) -> Opened | None:
        """Count the failure; the pause when this one opened the breaker."""
        state = self.repository.record_failure(endpoint, now, reason)
        if state.failures < FAILURES_TO_PAUSE or state.paused(now):
            return None
        until = now + pause_after(state.opens)
        if not self.repository.open(endpoint, now, until, keep_failures=FAILURES_TO_PAUSE - 1):
            return None
        return Opened(until=until, opens=state.opens + 1)
