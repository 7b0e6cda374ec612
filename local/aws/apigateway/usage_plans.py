"""Usage plans, as API Gateway applies them to a method that requires an API key.

The key is the request's `x-api-key` header, or with `apiKeySource: AUTHORIZER` the authorizer's
`usageIdentifierKey`. A request without a key, or whose key is unknown, disabled or in no usage plan of the
stage, is refused 403 (`INVALID_API_KEY`, or `ACCESS_DENIED` for no key at all from an authorizer). Each key
has a token bucket at its plan's throttle (`THROTTLED`, 429) and a request count per quota period
(`QUOTA_EXCEEDED`, 429); the counts per UTC day answer `GetUsage`. Keys and plans live in moto's API Gateway
(the template's plans are created there, under their names, so operator tools find them as on AWS); a key's
plan is looked up again after `KEY_LOOKUP_SECONDS`, so a key moved to another plan takes that long to follow.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.aws.apigateway.definition import Quota, UsagePlanSpec
from local.aws.apigateway.responses import GatewayError
from local.aws.apigateway.throttling import TokenBucket

FORBIDDEN = "Forbidden"
LIMIT_EXCEEDED = "Limit Exceeded"
TOO_MANY = "Too Many Requests"
KEY_LOOKUP_SECONDS = 2.0


@dataclass(frozen=True)
class _KeyPlan:
    key_id: str
    plan_id: str | None  # None: the key is unknown, disabled, or in no plan of this stage
    looked_up: float


def period_start(quota: Quota, today: date) -> date:
    if quota.period == "DAY":
        return today
    if quota.period == "WEEK":
        return today - timedelta(days=today.weekday())
    return today.replace(day=1)


class UsagePlans:
    def __init__(
        self,
        specs: tuple[UsagePlanSpec, ...],
        apigateway: Callable[[], Any],
        clock: Callable[[], float],
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.specs = specs
        self._client = apigateway
        self._clock = clock
        self._today = today
        self._lock = threading.Lock()
        self._plans: dict[str, UsagePlanSpec] = {}  # moto plan id -> spec
        self._keys: dict[str, _KeyPlan] = {}  # key value -> its plan
        self._buckets: dict[str, TokenBucket] = {}
        self._used: Counter[tuple[str, str, date]] = Counter()  # (plan id, key id, day) -> requests
        self.refused: Counter[str] = Counter()  # response type -> requests refused

    def create(self) -> dict[str, str]:
        """Create the template's plans in moto (or find them, by name); plan name -> id."""
        client = self._client()
        existing = {plan["name"]: plan["id"] for plan in client.get_usage_plans(limit=500).get("items", [])}
        for spec in self.specs:
            plan_id = existing.get(spec.name)
            if plan_id is None:
                plan_id = client.create_usage_plan(name=spec.name)["id"]
            self._plans[plan_id] = spec
        return {spec.name: plan_id for plan_id, spec in self._plans.items()}

    def admit(self, key_value: str | None) -> str:
        """Count one request under the key's plan; the key id, or the GatewayError API Gateway answers."""
        if not key_value:
            raise self._refuse("INVALID_API_KEY", FORBIDDEN)
        found = self._key_plan(key_value)
        if found.plan_id is None:
            raise self._refuse("INVALID_API_KEY", FORBIDDEN)
        spec = self._plans[found.plan_id]
        today = self._today()
        with self._lock:
            if spec.quota is not None:
                start = period_start(spec.quota, today)
                used = sum(
                    count
                    for (plan, key, day), count in self._used.items()
                    if plan == found.plan_id and key == found.key_id and start <= day <= today
                )
                if used >= spec.quota.limit:
                    self.refused["QUOTA_EXCEEDED"] += 1
                    raise GatewayError("QUOTA_EXCEEDED", LIMIT_EXCEEDED)
            if spec.throttle is not None:
                bucket = self._buckets.get(found.key_id)
                now = self._clock()
                if bucket is None or bucket.throttle != spec.throttle:
                    bucket = self._buckets[found.key_id] = TokenBucket(spec.throttle, now)
                if not bucket.take(now):
                    self.refused["THROTTLED"] += 1
                    raise GatewayError("THROTTLED", TOO_MANY)
            self._used[(found.plan_id, found.key_id, today)] += 1
        return found.key_id

    def usage(self, plan_id: str, key_id: str | None, start: date, end: date) -> dict[str, list[list[int]]]:
        """`GetUsage`'s items: key id -> [used, remaining] per day from `start` to `end`."""
        spec = self._plans.get(plan_id)
        with self._lock:
            keys = {key for (plan, key, _day) in self._used if plan == plan_id and (key_id is None or key == key_id)}
            if key_id is not None:
                keys.add(key_id)
            items: dict[str, list[list[int]]] = {}
            for key in sorted(keys):
                days: list[list[int]] = []
                day = start
                used_so_far = 0
                while day <= end:
                    used = self._used.get((plan_id, key, day), 0)
                    used_so_far += used
                    limit = spec.quota.limit if spec is not None and spec.quota is not None else None
                    days.append([used, max(0, limit - used_so_far) if limit is not None else 0])
                    day += timedelta(days=1)
                items[key] = days
        return items

    def _refuse(self, response_type: str, message: str) -> GatewayError:
        with self._lock:
            self.refused[response_type] += 1
        return GatewayError(response_type, message)

    def _key_plan(self, key_value: str) -> _KeyPlan:
        now = self._clock()
        with self._lock:
            cached = self._keys.get(key_value)
        if cached is not None and now - cached.looked_up < KEY_LOOKUP_SECONDS:
            return cached
        client = self._client()
        found = _KeyPlan(key_id="", plan_id=None, looked_up=now)
        for key in _all(client.get_api_keys, includeValues=True):
            if key.get("value") == key_value:
                plans = [p["id"] for p in _all(client.get_usage_plans, keyId=key["id"]) if p["id"] in self._plans]
                enabled = bool(key.get("enabled", False))
                found = _KeyPlan(key_id=key["id"], plan_id=plans[0] if plans and enabled else None, looked_up=now)
                break
        with self._lock:
            self._keys[key_value] = found
        return found


def _all(operation: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {**kwargs, "limit": 500}
    while True:
        answer = operation(**request)
        items.extend(answer.get("items", []))
        if not answer.get("position"):
            return items
        request["position"] = answer["position"]
