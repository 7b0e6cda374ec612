"""API Gateway usage plans: the per-tenant API keys they count requests under, and what a key used.

With `apiKeySource: AUTHORIZER` the authorizer names each request's API key (the tenant's `usageIdentifierKey`);
the usage plan the key belongs to throttles it and counts it against the tier's monthly quota. These keys
authenticate nothing (callers never see or send them): the relay's own Bearer keys do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from shared.models.tiers import usage_plan_name
from shared.repository.codec import error_code

KEY_NAME_PREFIX = "kling-relay-tenant-"


@dataclass(frozen=True)
class UsageKey:
    key_id: str
    value: str


class UsagePlans:
    def __init__(self, client: Any) -> None:
        self.client = client

    def find_plans(self, stack_name: str) -> dict[str, str]:
        """The stack's tier plans: tier name -> usage plan id (plans are named `<stack>-tier-<tier>`)."""
        prefix = usage_plan_name(stack_name, "")
        found: dict[str, str] = {}
        request: dict[str, Any] = {"limit": 500}
        while True:
            answer = self.client.get_usage_plans(**request)
            for plan in answer.get("items", []):
                if plan.get("name", "").startswith(prefix):
                    found[plan["name"][len(prefix) :]] = plan["id"]
            if not answer.get("position"):
                return found
            request["position"] = answer["position"]

    def create_key(self, tenant_id: str, usage_plan_id: str) -> UsageKey:
        """A new enabled API key for the tenant, counted under the usage plan."""
        value = secrets.token_urlsafe(30)
        created = self.client.create_api_key(
            name=f"{KEY_NAME_PREFIX}{tenant_id}",
            description=f"usage identifier of tenant {tenant_id} (authenticates nothing)",
            enabled=True,
            value=value,
        )
        self.client.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=created["id"], keyType="API_KEY")
        return UsageKey(key_id=created["id"], value=value)

    def move_key(self, key_id: str, to_plan: str, from_plan: str | None) -> None:
        """Count the key under another plan: added there first, then removed from the old one."""
        try:
            self.client.create_usage_plan_key(usagePlanId=to_plan, keyId=key_id, keyType="API_KEY")
        except ClientError as exc:
            if error_code(exc) != "ConflictException":  # already there
                raise
        if from_plan and from_plan != to_plan:
            try:
                self.client.delete_usage_plan_key(usagePlanId=from_plan, keyId=key_id)
            except ClientError as exc:
                if error_code(exc) != "NotFoundException":
                    raise

    def requests_used(self, usage_plan_id: str, key_id: str, start: date, end: date) -> int:
        """Requests the key made under the plan from `start` to `end` (inclusive, UTC days)."""
        used = 0
        request: dict[str, Any] = {
            "usagePlanId": usage_plan_id,
            "keyId": key_id,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
        }
        while True:
            answer = self.client.get_usage(**request)
            for days in answer.get("items", {}).values():
                used += sum(int(day[0]) for day in days)
            if not answer.get("position"):
                return used
            request["position"] = answer["position"]
