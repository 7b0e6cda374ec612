"""Pacing enforced with DynamoDB conditional writes in the jobs table, so every function shares one view.

Per provider, three kinds of item under `PACE#<provider>`:

- `RATE`: a sliding window log: the times of the last `submits_per_window` new tasks, booked ones included. A
  task is admitted when fewer than that many fall in the last `window_seconds`, so no window anywhere ever
  holds more (a token bucket would let a full burst follow a refill: twice the limit in one window). When the
  window is spent, a job may book the first time at which it no longer is (`reserve`): the time joins the log
  as if the task had been sent then, so the next job books the slot after it, and every waiting job knows
  exactly when it goes instead of asking again and again. The same item keeps a second log, `sent`: the times
  tasks really went. A booking is a plan, and a job can come late to its slot (a busy function, a slow
  round); a late job and the on-time ones after it would crowd one window at the provider. So whoever sends,
  booked or not, also needs fewer than `submits_per_window` sends in the last window: a late job delays
  the ones behind it by as much, never crowds them. Written read-then-conditionally (the condition is the
  item's `version` as read), so two functions never spend the same slot. `paused_until` holds the provider
  back after a 429 with Retry-After.
- `INFLIGHT`: the number of tasks the provider holds.
- `SLOT#<job id>`: the job's place in that count. Acquire adds the slot and 1 in one transaction (only while
  the count is under the limit, only if the slot is new); release deletes the slot and subtracts 1 in one
  transaction (only if the slot exists). Both are idempotent, so a retried function or a stream record
  delivered twice neither leaks nor double-frees a place.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from shared.models.common import ProviderName
from shared.pacing.limits import ProviderLimit
from shared.repository import schema
from shared.repository.codec import error_code

RATE_SK = "RATE"
INFLIGHT_SK = "INFLIGHT"
SLOT_PREFIX = "SLOT#"
ENTITY = "pace"
RECENT, SENT = "recent", "sent"  # the RATE item's logs: the window's (sends and bookings), and the sends alone
# Conditional writes lost to other functions before the rate is reported as contended (the job waits briefly).
MAX_RACES = 8
# Time kept between a task and the one `submits_per_window` after it beyond the window itself: a request reaches
# the provider a little after the time we log for it, by a delay that varies, and the provider counts arrivals.
SPACING_GUARD_SECONDS = 0.5
# A booking is worth more tries: losing it sends the job back to guessing when to ask again.
MAX_BOOKING_RACES = 24


class Refusal(StrEnum):
    PAUSED = "paused"  # the provider answered 429 with Retry-After; nobody sends until then
    RATE_LIMITED = "rate_limited"  # the provider's submit rate is spent for now
    AT_CAPACITY = "at_capacity"  # the provider holds its maximum of unfinished tasks


@dataclass(frozen=True)
class Grant:
    granted: bool
    refusal: Refusal | None = None
    retry_in: float | None = None  # seconds until the refusal may lift, when known
    at: float | None = None  # a booked slot: the time (epoch seconds) the job may be sent, the rate already spent

    @classmethod
    def yes(cls) -> Grant:
        return cls(granted=True)


def _number(value: float | int) -> dict[str, str]:
    return {"N": repr(float(value)) if isinstance(value, float) else str(value)}


class Pacer:
    def __init__(
        self,
        table_name: str,
        client: Any,
        limits: Callable[[ProviderName], ProviderLimit],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("table_name is required")
        self.table_name = table_name
        self.client = client
        self.limits = limits
        self.clock = clock

    def _key(self, provider: ProviderName, sk: str) -> dict[str, dict[str, str]]:
        return {schema.PK: {"S": schema.pace_pk(provider)}, schema.SK: {"S": sk}}

    # -- acquire and release -------------------------------------------------------------------------

    def acquire(self, provider: ProviderName, job_id: str, *, booked: bool = False) -> Grant:
        """A place in flight and a submit slot for the job at `provider`, or why not (nothing held then).

        `booked`: the job's slot was reserved earlier and its time has come; the rate was spent when the slot was
        booked, so only the place, a pause (one that came after the booking) and the sends of the last window are
        checked. Refused for those sends, the job keeps its booking: `retry_in` says when they leave room.
        """
        grant = self._take_place(provider, job_id)
        if not grant.granted:
            return grant
        grant = self._take_rate(provider, booked=booked)
        if not grant.granted:
            self.release(provider, job_id)
        return grant

    def reserve(self, provider: ProviderName, *, not_after: float) -> Grant:
        """Book the provider's first free submit slot, if it comes no later than `not_after` (nothing is booked
        otherwise). Granted with `at`, the slot's time; refused with the time it would have been in `retry_in`."""
        limit = self.limits(provider)
        for race in range(MAX_BOOKING_RACES):
            item, now = self._rate_item(provider), self.clock()
            paused_until = _paused_until(item)
            recent = _recent(item, limit)
            # Booked slots are spread evenly (a window's worth over the window and guard), never in clumps: jobs
            # come a varying moment after their slot, and a clump that comes late crowds the next window.
            spaced = recent[-1] + _spacing(limit) if recent else 0.0
            at = max(now, _first_free(recent, limit), spaced, paused_until or 0.0)
            if at > not_after:
                refusal = Refusal.PAUSED if paused_until is not None and paused_until > now else Refusal.RATE_LIMITED
                return Grant(granted=False, refusal=refusal, retry_in=at - now)
            if self._record(provider, item.get("version", {}).get("N"), {RECENT: _kept(recent, at, limit)}, at):
                return Grant(granted=True, at=at)
            _back_off(race, MAX_BOOKING_RACES)
        return Grant(granted=False, refusal=Refusal.RATE_LIMITED, retry_in=limit.interval_seconds)

    def release(self, provider: ProviderName, job_id: str) -> bool:
        """Give back the job's place in flight; False when it held none (already released, or never held)."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": self._key(provider, SLOT_PREFIX + job_id),
                            "ConditionExpression": "attribute_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": schema.PK},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._key(provider, INFLIGHT_SK),
                            "UpdateExpression": "ADD #count :minus_one",
                            "ExpressionAttributeNames": {"#count": "in_flight"},
                            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException" or self.holds(provider, job_id):
                raise
            return False
        return True

    def holds(self, provider: ProviderName, job_id: str) -> bool:
        answer = self.client.get_item(
            TableName=self.table_name, Key=self._key(provider, SLOT_PREFIX + job_id), ConsistentRead=True
        )
        return "Item" in answer

    def in_flight(self, provider: ProviderName) -> int:
        answer = self.client.get_item(
            TableName=self.table_name, Key=self._key(provider, INFLIGHT_SK), ConsistentRead=True
        )
        return int(answer.get("Item", {}).get("in_flight", {}).get("N", "0"))

    def _take_place(self, provider: ProviderName, job_id: str) -> Grant:
        limit = self.limits(provider)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._key(provider, INFLIGHT_SK),
                            "UpdateExpression": "ADD #count :one SET #entity = :entity",
                            "ConditionExpression": "attribute_not_exists(#count) OR #count < :max",
                            "ExpressionAttributeNames": {"#count": "in_flight", "#entity": schema.ENTITY},
                            "ExpressionAttributeValues": {
                                ":one": {"N": "1"},
                                ":max": {"N": str(limit.max_in_flight)},
                                ":entity": {"S": ENTITY},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                **self._key(provider, SLOT_PREFIX + job_id),
                                schema.ENTITY: {"S": ENTITY},
                                "job_id": {"S": job_id},
                                "acquired_at": _number(self.clock()),
                            },
                            "ConditionExpression": "attribute_not_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": schema.PK},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            if self.holds(provider, job_id):
                return Grant.yes()  # taken before by this job (a retried dispatch): still its own
            return Grant(granted=False, refusal=Refusal.AT_CAPACITY)
        return Grant.yes()

    # -- rate -------------------------------------------------------------------------------------

    def _rate_item(self, provider: ProviderName) -> dict[str, Any]:
        answer = self.client.get_item(TableName=self.table_name, Key=self._key(provider, RATE_SK), ConsistentRead=True)
        item: dict[str, Any] = answer.get("Item", {})
        return item

    def _take_rate(self, provider: ProviderName, *, booked: bool) -> Grant:
        """Log a send now: in the window log too unless the job booked its place there already."""
        limit = self.limits(provider)
        for race in range(MAX_RACES):
            item, now = self._rate_item(provider), self.clock()
            paused_until = _paused_until(item)
            if paused_until is not None and paused_until > now:
                return Grant(granted=False, refusal=Refusal.PAUSED, retry_in=paused_until - now)
            recent, sent = _recent(item, limit), _recent(item, limit, SENT)
            free_at = _first_free(sent, limit) if booked else max(_first_free(recent, limit), _first_free(sent, limit))
            if free_at > now:
                return Grant(granted=False, refusal=Refusal.RATE_LIMITED, retry_in=free_at - now)
            logs = {SENT: _kept(sent, now, limit)}
            if not booked:
                logs[RECENT] = _kept(recent, now, limit)
            if self._record(provider, item.get("version", {}).get("N"), logs, now):
                return Grant.yes()
            _back_off(race, MAX_RACES)
        return Grant(granted=False, refusal=Refusal.RATE_LIMITED, retry_in=_spacing(limit))

    def _record(self, provider: ProviderName, version: str | None, logs: dict[str, list[float]], now: float) -> bool:
        """Store the logs given (window log, sends) if nobody else wrote the item since `version` was read, and no
        pause covers `now` (the time of the slot taken)."""
        values: dict[str, Any] = {
            ":next": {"N": str(int(version or 0) + 1)},
            ":now": _number(now),
            ":entity": {"S": ENTITY},
        }
        values.update({f":{name}": {"L": [_number(t) for t in times]} for name, times in logs.items()})
        assignments = "".join(f"#{name} = :{name}, " for name in logs)
        if version is None:
            unchanged = "attribute_not_exists(#version)"
        else:
            unchanged = "#version = :read"
            values[":read"] = {"N": version}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(provider, RATE_SK),
                UpdateExpression=f"SET {assignments}#version = :next, #entity = :entity",
                ConditionExpression=f"{unchanged} AND (attribute_not_exists(#paused) OR #paused <= :now)",
                ExpressionAttributeNames={
                    **{f"#{name}": name for name in logs},
                    "#version": "version",
                    "#paused": "paused_until",
                    "#entity": schema.ENTITY,
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def pause(self, provider: ProviderName, seconds: float) -> None:
        """Send nothing new to `provider` for `seconds` (its Retry-After); a pause never shortens a longer one."""
        until = self.clock() + max(0.0, seconds)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(provider, RATE_SK),
                UpdateExpression="SET #paused = :until, #entity = :entity",
                ConditionExpression="attribute_not_exists(#paused) OR #paused < :until",
                ExpressionAttributeNames={"#paused": "paused_until", "#entity": schema.ENTITY},
                ExpressionAttributeValues={":until": _number(until), ":entity": {"S": ENTITY}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise


def _paused_until(item: dict[str, Any]) -> float | None:
    return float(item["paused_until"]["N"]) if "paused_until" in item else None


def _recent(item: dict[str, Any], limit: ProviderLimit, log: str = RECENT) -> list[float]:
    """A log (the window's, or the sends), oldest first; a lowered limit keeps only what it counts."""
    recent = sorted(float(entry["N"]) for entry in item.get(log, {}).get("L", []))
    return recent[-limit.submits_per_window :]


def _kept(log: list[float], new: float, limit: ProviderLimit) -> list[float]:
    return sorted([*log, new])[-limit.submits_per_window :]


def _first_free(recent: list[float], limit: ProviderLimit) -> float:
    """The first time a new task fits: once the oldest of the last `submits_per_window` leaves its window (and
    the guard has passed).

    Every task logged after that one (booked ones too) is fewer than the limit, so a window around the new time
    never holds more than the limit, wherever in the log the new time falls.
    """
    if len(recent) < limit.submits_per_window:
        return 0.0
    return recent[-limit.submits_per_window] + limit.window_seconds + SPACING_GUARD_SECONDS


def _spacing(limit: ProviderLimit) -> float:
    return (limit.window_seconds + SPACING_GUARD_SECONDS) / limit.submits_per_window


def _back_off(race: int, races: int) -> None:
    """Lost a conditional write to another function: a short random pause before reading again, so a crowd of
    functions does not keep colliding in step."""
    if race + 1 < races:
        time.sleep(random.uniform(0, 0.01 * 2 ** min(race, 5)))  # noqa: S311 (jitter, not a secret)
