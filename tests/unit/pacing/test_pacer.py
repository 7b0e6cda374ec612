"""The shared pacer on moto DynamoDB, with an injected clock: rate, burst, roll-over, pauses, places in flight."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.models.common import ProviderName
from shared.pacing.limits import DEFAULT_PROVIDER_LIMITS, ProviderLimit
from shared.pacing.pacer import SPACING_GUARD_SECONDS as GUARD
from shared.pacing.pacer import Pacer, Refusal
from tests.fixtures.aws import TABLE


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pacer_for(client: Any, clock: Clock, **limits: ProviderLimit) -> Pacer:
    def limit(provider: ProviderName) -> ProviderLimit:
        return limits.get(provider) or DEFAULT_PROVIDER_LIMITS[provider]

    return Pacer(TABLE, client, limit, clock=clock)


FOUR_PER_2S = ProviderLimit(submits_per_window=4, window_seconds=2, max_in_flight=100)


def spent_window(dynamodb: Any) -> tuple[Clock, Pacer]:
    """A pacer at 4 per 2 s whose window four jobs just spent."""
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    for i in range(4):
        assert pacer.acquire("kie", f"now_{i}").granted
    return clock, pacer


def test_a_window_admits_its_burst_then_refuses_with_the_time_to_the_next_slot(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)

    granted = [pacer.acquire("kie", f"job_{i}").granted for i in range(4)]
    refused = pacer.acquire("kie", "job_4")

    assert granted == [True] * 4
    assert (refused.granted, refused.refusal) == (False, Refusal.RATE_LIMITED)
    # All four came at once: the first leaves the window in 2 s (and the guard against arrival jitter passes).
    assert refused.retry_in == pytest.approx(2.0 + GUARD)
    assert pacer.in_flight("kie") == 4  # the refused job holds no place
    assert not pacer.holds("kie", "job_4")


def test_the_window_rolls_over_one_task_at_a_time(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    for i in range(4):
        assert pacer.acquire("kie", f"a{i}").granted
        clock.now += 0.25  # at 0, 0.25, 0.5, 0.75

    clock.now = 1_000_001.99 + GUARD
    refused = pacer.acquire("kie", "b0")
    assert not refused.granted
    assert refused.retry_in == pytest.approx(0.01)
    clock.now = 1_000_002.0 + GUARD  # the first task left the window: one slot, no more
    assert pacer.acquire("kie", "b0").granted
    assert not pacer.acquire("kie", "b1").granted
    clock.now += 10  # idle far longer than a window: a full window again, never a backlog of credit
    assert [pacer.acquire("kie", f"c{i}").granted for i in range(5)] == [True] * 4 + [False]


def test_over_any_span_no_more_than_the_window_allows_are_admitted(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    admitted: list[float] = []
    for step in range(200):  # 20 s, a try every 0.1 s
        if pacer.acquire("kie", f"job_{step}").granted:
            admitted.append(clock.now)
        clock.now += 0.1
    for start in admitted:
        in_window = [t for t in admitted if start <= t < start + 2]
        assert len(in_window) <= 4
    assert len(admitted) == 4 * 8  # 4 in every 2 s and the guard: the limit is used, not just respected


def test_in_flight_places_are_capped_and_given_back_idempotently(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=ProviderLimit(submits_per_window=100, window_seconds=1, max_in_flight=2))

    assert pacer.acquire("kie", "job_a").granted
    assert pacer.acquire("kie", "job_b").granted
    full = pacer.acquire("kie", "job_c")
    assert (full.granted, full.refusal) == (False, Refusal.AT_CAPACITY)

    assert pacer.release("kie", "job_a") is True
    assert pacer.release("kie", "job_a") is False  # twice (a stream record delivered again): no double free
    assert pacer.release("kie", "job_never") is False
    assert pacer.in_flight("kie") == 1
    assert pacer.acquire("kie", "job_c").granted
    assert pacer.in_flight("kie") == 2


def test_acquiring_again_for_the_same_job_keeps_its_one_place(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=ProviderLimit(submits_per_window=100, window_seconds=1, max_in_flight=1))

    assert pacer.acquire("kie", "job_a").granted
    assert pacer.acquire("kie", "job_a").granted  # a retried dispatch: its own place, not a second one
    assert pacer.in_flight("kie") == 1
    assert pacer.release("kie", "job_a") is True
    assert pacer.in_flight("kie") == 0


def test_a_pause_holds_the_provider_until_it_ends_and_is_never_shortened(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    pacer.pause("kie", 30)
    pacer.pause("kie", 5)  # a shorter Retry-After later does not cut the longer one

    paused = pacer.acquire("kie", "job_a")
    assert (paused.granted, paused.refusal) == (False, Refusal.PAUSED)
    assert paused.retry_in == pytest.approx(30)
    assert pacer.in_flight("kie") == 0
    assert pacer.acquire("vidgo", "job_a").granted  # other providers are not held back

    clock.now += 30
    assert pacer.acquire("kie", "job_a").granted


def test_providers_are_paced_separately(dynamodb: Any) -> None:
    clock = Clock()
    one = ProviderLimit(submits_per_window=1, window_seconds=10, max_in_flight=10)
    pacer = pacer_for(dynamodb, clock, kie=one, vidgo=one)

    assert pacer.acquire("kie", "job_a").granted
    assert not pacer.acquire("kie", "job_b").granted
    assert pacer.acquire("vidgo", "job_b").granted


def test_300_concurrent_acquires_never_exceed_the_rate_or_the_in_flight_limit(dynamodb: Any) -> None:
    """Threads share one moto table (writes serialized as DynamoDB applies them): conditions decide, not luck."""
    clock = Clock()
    limit = ProviderLimit(submits_per_window=20, window_seconds=10, max_in_flight=15)
    pacer = pacer_for(dynamodb, clock, kie=limit)
    granted: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(30)

    def worker(index: int) -> None:
        start.wait()
        for n in range(10):
            job_id = f"job_{index}_{n}"
            if pacer.acquire("kie", job_id).granted:
                with lock:
                    granted.append(job_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 15  # the in-flight cap binds first (the burst would allow 20)
    assert pacer.in_flight("kie") == 15
    assert all(pacer.holds("kie", job_id) for job_id in granted)

    # Free them all at once, concurrently and twice each: the count returns to exactly zero.
    def free(job_id: str) -> None:
        pacer.release("kie", job_id)
        pacer.release("kie", job_id)

    freeing = [threading.Thread(target=free, args=(job_id,)) for job_id in granted]
    for thread in freeing:
        thread.start()
    for thread in freeing:
        thread.join()
    assert pacer.in_flight("kie") == 0

    # The rate: only what is left of the window's 20 is admitted now, with places to spare.
    more = [pacer.acquire("kie", f"late_{i}").granted for i in range(10)]
    assert sum(more) == 5


# -- booked slots ---------------------------------------------------------------------------------------


def windows_hold_at_most(times: list[float], count: int, seconds: float) -> bool:
    ordered = sorted(times)
    return all(len([t for t in ordered if start <= t < start + seconds]) <= count for start in ordered)


def test_a_spent_window_books_each_job_the_next_free_slot_in_turn(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    sent = [clock.now for i in range(4) if pacer.acquire("kie", f"now_{i}").granted]

    booked = [pacer.reserve("kie", not_after=clock.now + 60) for _ in range(8)]

    assert all(grant.granted for grant in booked)
    slots = [grant.at for grant in booked if grant.at is not None]
    # The first when the window frees, the rest spread evenly: four per window and guard, never in a clump.
    spacing = (2 + GUARD) / 4
    assert slots == pytest.approx([clock.now + 2 + GUARD + k * spacing for k in range(8)])
    assert windows_hold_at_most(sent + slots, 4, 2)
    # Nobody jumps the queue: a job asking for a slot now is told to wait past the last booking.
    refused = pacer.acquire("kie", "late")
    assert (refused.granted, refused.refusal) == (False, Refusal.RATE_LIMITED)
    assert refused.retry_in == pytest.approx(6.0 + 3 * GUARD)


def test_booked_and_immediate_slots_together_never_crowd_a_window(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    taken: list[float] = []
    for step in range(120):  # 12 s: every 0.1 s one job tries now, and every third one books when refused
        grant = pacer.acquire("kie", f"job_{step}")
        if grant.granted:
            taken.append(clock.now)
        elif step % 3 == 0:
            booking = pacer.reserve("kie", not_after=clock.now + 60)
            assert booking.at is not None
            taken.append(booking.at)
        clock.now += 0.1
    assert windows_hold_at_most(taken, 4, 2)


def test_a_slot_past_the_jobs_deadline_is_not_booked(dynamodb: Any) -> None:
    clock, pacer = spent_window(dynamodb)

    refused = pacer.reserve("kie", not_after=clock.now + 1)

    assert (refused.granted, refused.refusal, refused.at) == (False, Refusal.RATE_LIMITED, None)
    assert refused.retry_in == pytest.approx(2.0 + GUARD)
    free_at = clock.now + 2 + GUARD
    assert pacer.reserve("kie", not_after=free_at).at == pytest.approx(free_at)  # nothing was booked before


def test_a_booked_job_takes_its_place_without_spending_the_rate_again(dynamodb: Any) -> None:
    clock, pacer = spent_window(dynamodb)
    bookings = [pacer.reserve("kie", not_after=clock.now + 60) for _ in range(4)]
    assert all(grant.at is not None for grant in bookings)

    clock.now = max(grant.at or 0.0 for grant in bookings)  # every booked slot has come
    assert all(pacer.acquire("kie", f"booked_{i}", booked=True).granted for i in range(4))
    assert pacer.in_flight("kie") == 8
    assert not pacer.acquire("kie", "unbooked").granted  # the window's four slots were the booked jobs'


def test_a_booking_waits_out_a_pause_and_a_later_pause_still_holds_a_booked_job(dynamodb: Any) -> None:
    clock = Clock()
    pacer = pacer_for(dynamodb, clock, kie=FOUR_PER_2S)
    pacer.pause("kie", 30)

    booking = pacer.reserve("kie", not_after=clock.now + 60)
    assert booking.at == pytest.approx(clock.now + 30)
    assert pacer.reserve("kie", not_after=clock.now + 20).refusal is Refusal.PAUSED

    clock.now = booking.at or 0.0
    pacer.pause("kie", 10)  # Kie asked for quiet again after the booking was made
    held = pacer.acquire("kie", "booked", booked=True)
    assert (held.granted, held.refusal) == (False, Refusal.PAUSED)
    assert pacer.in_flight("kie") == 0


def test_300_concurrent_bookings_are_all_distinct_slots_at_the_rate(dynamodb: Any) -> None:
    clock = Clock()
    limit = ProviderLimit(submits_per_window=20, window_seconds=10, max_in_flight=100)
    pacer = pacer_for(dynamodb, clock, kie=limit)
    slots: list[float] = []
    refused: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(30)

    def worker(index: int) -> None:
        start.wait()
        for _ in range(10):
            grant = pacer.reserve("kie", not_after=clock.now + 3600)
            with lock:
                if grant.at is not None:
                    slots.append(grant.at)
                else:
                    refused.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert windows_hold_at_most(slots, 20, 10)
    # A booking lost to contention is refused (the job waits and books again), never doubled.
    assert len(slots) + len(refused) == 300
    assert len(slots) >= 250
    assert max(slots) == pytest.approx(clock.now + (len(slots) - 1) * (10 + GUARD) / 20)  # evenly spread


def test_jobs_late_for_their_slots_never_crowd_a_window_of_sends(dynamodb: Any) -> None:
    clock, pacer = spent_window(dynamodb)
    sends = [clock.now] * 4
    slots = [pacer.reserve("kie", not_after=clock.now + 600).at or 0.0 for _ in range(40)]
    assert all(slots)
    # Each booked job wakes a varying moment after its slot (up to 3 s: a busy machine) and sends when the sends
    # of the last window leave room, told how long to wait when they do not.
    lateness = [((i * 7919) % 31) / 10 for i in range(40)]
    due = sorted((slot + late, f"booked_{i}") for i, (slot, late) in enumerate(zip(slots, lateness, strict=True)))
    refused = 0
    while due:
        when, job = due.pop(0)
        clock.now = when
        grant = pacer.acquire("kie", job, booked=True)
        if grant.granted:
            sends.append(clock.now)
            continue
        refused += 1
        assert (grant.refusal, grant.retry_in is not None) == (Refusal.RATE_LIMITED, True)
        assert grant.retry_in is not None
        due = sorted([*due, (when + grant.retry_in, job)])

    assert len(sends) == 44  # every booked job went, each once
    assert refused > 0  # the lateness did crowd the plan, and was held back
    # The provider counts arrivals: no window of 2 s (plus the guard for the way there) holds more than 4 sends.
    assert windows_hold_at_most(sends, 4, 2 + GUARD - 1e-6)
    assert pacer.in_flight("kie") == 44


def test_a_booked_job_refused_for_late_sends_keeps_its_booking(dynamodb: Any) -> None:
    clock, pacer = spent_window(dynamodb)
    booking = pacer.reserve("kie", not_after=clock.now + 60)
    assert booking.at is not None
    window_log = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "PACE#kie"}, "sk": {"S": "RATE"}})["Item"]

    clock.now += 1.0  # before the slot: the four sends at the start are still within the window and guard
    held = pacer.acquire("kie", "booked", booked=True)

    assert (held.granted, held.refusal) == (False, Refusal.RATE_LIMITED)
    assert held.retry_in == pytest.approx(1.0 + GUARD)
    assert not pacer.holds("kie", "booked")
    after = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "PACE#kie"}, "sk": {"S": "RATE"}})["Item"]
    assert after["recent"] == window_log["recent"]  # no slot booked or spent again
