"""Pacing enforced with DynamoDB conditional writes in the jobs table, so every function shares one view.

Per provider, three kinds of item under `PACE#<provider>`:

- `RATE`: a sliding window log: the times of the last `submits_per_window` new tasks. A task is admitted when
  fewer than that many fall in the last `window_seconds`, so no window anywhere ever holds more (a token
  bucket would let a full burst follow a refill: twice the limit in one window). Written read-then-
  conditionally (the condition is the item's `version` as read), so two functions never spend the same
  slot. `paused_until` holds the provider back after a 429 with Retry-After.
- `INFLIGHT`: the number of tasks the provider holds.
- `SLOT#<job id>`: the job's place in that count. Acquire adds the slot and 1 in one transaction (only while
  the count is under the limit, only if the slot is new); release deletes the slot and subtracts 1 in one
  transaction (only if the slot exists). Both are idempotent, so a retried function or a stream record
  delivered twice neither leaks nor double-frees a place.
"""

from __future__ import annotations

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
# Conditional writes lost to other functions before the rate is reported as contended (the job waits briefly).
MAX_RACES = 8


class Refusal(StrEnum):
    PAUSED = "paused"  # the provider answered 429 with Retry-After; nobody sends until then
    RATE_LIMITED = "rate_limited"  # the provider's submit rate is spent for now
    AT_CAPACITY = "at_capacity"  # the provider holds its maximum of unfinished tasks


@dataclass(frozen=True)
class Grant:
    granted: bool
    refusal: Refusal | None = None
    retry_in: float | None = None  # seconds until the refusal may lift, when known

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

    def acquire(self, provider: ProviderName, job_id: str) -> Grant:
        """A place in flight and a submit slot for the job at `provider`, or why not (nothing held then)."""
        grant = self._take_place(provider, job_id)
        if not grant.granted:
            return grant
        grant = self._take_rate(provider)
        if not grant.granted:
            self.release(provider, job_id)
        return grant

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

    def _take_rate(self, provider: ProviderName) -> Grant:
        limit = self.limits(provider)
        for _ in range(MAX_RACES):
            answer = self.client.get_item(
                TableName=self.table_name, Key=self._key(provider, RATE_SK), ConsistentRead=True
            )
            item = answer.get("Item", {})
            now = self.clock()
            paused_until = float(item["paused_until"]["N"]) if "paused_until" in item else None
            if paused_until is not None and paused_until > now:
                return Grant(granted=False, refusal=Refusal.PAUSED, retry_in=paused_until - now)
            recent = sorted(float(entry["N"]) for entry in item.get("recent", {}).get("L", []))
            recent = recent[-limit.submits_per_window :]  # a lowered limit keeps only what it counts
            if len(recent) >= limit.submits_per_window and recent[0] > now - limit.window_seconds:
                # The window's quota is spent: the oldest of its tasks leaves the window first.
                return Grant(
                    granted=False, refusal=Refusal.RATE_LIMITED, retry_in=recent[0] + limit.window_seconds - now
                )
            kept = [*recent, now][-limit.submits_per_window :]
            if self._record(provider, item.get("version", {}).get("N"), kept, now):
                return Grant.yes()
        return Grant(granted=False, refusal=Refusal.RATE_LIMITED, retry_in=limit.interval_seconds)

    def _record(self, provider: ProviderName, version: str | None, recent: list[float], now: float) -> bool:
        """Store the window's admissions if nobody else did since `version` was read (and no pause came)."""
        values: dict[str, Any] = {
            ":recent": {"L": [_number(t) for t in recent]},
            ":next": {"N": str(int(version or 0) + 1)},
            ":now": _number(now),
            ":entity": {"S": ENTITY},
        }
        if version is None:
            unchanged = "attribute_not_exists(#version)"
        else:
            unchanged = "#version = :read"
            values[":read"] = {"N": version}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(provider, RATE_SK),
                UpdateExpression="SET #recent = :recent, #version = :next, #entity = :entity",
                ConditionExpression=f"{unchanged} AND (attribute_not_exists(#paused) OR #paused <= :now)",
                ExpressionAttributeNames={
                    "#recent": "recent",
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
