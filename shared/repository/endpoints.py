"""Webhook endpoints' circuit breaker state: one item per (tenant, webhook URL) in the single table.

An item exists only while an endpoint is failing (its first failure writes it; a success deletes it), and it
expires (DynamoDB TTL) a week after its last write, so endpoints nobody sends to any more leave nothing behind.
Every change is one conditional or atomic write, so concurrent deliveries to one endpoint cannot lose counts or
open its breaker twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from shared.repository import schema
from shared.repository.codec import error_code, from_attributes, to_attributes
from shared.repository.table import TableRepository

ENTITY = "webhook_endpoint"
STATE_KEPT_SECONDS = 7 * 86_400
URL_KEPT_CHARS = 512


@dataclass(frozen=True)
class Endpoint:
    """A tenant's webhook URL. Tenants sharing a host (a hosted webhook service) never share a breaker."""

    tenant_id: str
    url: str

    @property
    def url_sha256(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()


class EndpointState(BaseModel):
    tenant_id: str
    url: str
    failures: int = 0  # consecutive failed attempts
    opens: int = 0  # times the breaker opened since the endpoint last answered well
    paused_until: float = 0.0  # epoch seconds: no attempt before this
    trial_until: float = 0.0  # epoch seconds: one trial attempt holds the half-open breaker until then
    last_failure: str | None = None
    updated_at: float = 0.0

    def paused(self, now: float) -> bool:
        return self.paused_until > now


class EndpointHealthRepository(TableRepository):
    @staticmethod
    def _key(endpoint: Endpoint) -> dict[str, Any]:
        pk = schema.endpoint_pk(endpoint.tenant_id, endpoint.url_sha256)
        return to_attributes({schema.PK: pk, schema.SK: schema.ENDPOINT_SK})

    def get(self, endpoint: Endpoint) -> EndpointState | None:
        answer = self.client.get_item(TableName=self.table_name, Key=self._key(endpoint))
        return EndpointState.model_validate(from_attributes(answer["Item"])) if "Item" in answer else None

    def record_failure(self, endpoint: Endpoint, now: float, reason: str) -> EndpointState:
        """Count one more consecutive failure; the state after it."""
        answer = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(endpoint),
            UpdateExpression=(
                "ADD failures :one SET #entity = :entity, tenant_id = :tenant, #url = :url, last_failure = :reason, "
                "updated_at = :now, #ttl = :ttl"
            ),
            ExpressionAttributeNames={"#entity": schema.ENTITY, "#url": "url", "#ttl": schema.TTL_ATTRIBUTE},
            ExpressionAttributeValues=to_attributes(
                {
                    ":one": 1,
                    ":entity": ENTITY,
                    ":tenant": endpoint.tenant_id,
                    ":url": endpoint.url[:URL_KEPT_CHARS],
                    ":reason": reason[:200],
                    ":now": _number(now),
                    ":ttl": int(now) + STATE_KEPT_SECONDS,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return EndpointState.model_validate(from_attributes(answer["Attributes"]))

    def open(self, endpoint: Endpoint, now: float, until: float, *, keep_failures: int) -> bool:
        """Pause the endpoint until `until`, unless it already is paused (another failure opened it first).

        `keep_failures` is what the failure count restarts from: one short of the threshold, so the single trial
        attempt after the pause reopens the breaker if it fails too."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(endpoint),
                UpdateExpression="SET paused_until = :until, failures = :keep, updated_at = :now ADD opens :one",
                ConditionExpression=(
                    "attribute_exists(#pk) AND (attribute_not_exists(paused_until) OR paused_until <= :now)"
                ),
                ExpressionAttributeNames={"#pk": schema.PK},
                ExpressionAttributeValues=to_attributes(
                    {":until": _number(until), ":keep": keep_failures, ":now": _number(now), ":one": 1}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_trial(self, endpoint: Endpoint, now: float, until: float) -> bool:
        """Take the one trial attempt a breaker whose pause is over allows; False when another delivery holds it."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(endpoint),
                UpdateExpression="SET trial_until = :until",
                ConditionExpression=(
                    "attribute_exists(#pk) AND paused_until <= :now "
                    "AND (attribute_not_exists(trial_until) OR trial_until <= :now)"
                ),
                ExpressionAttributeNames={"#pk": schema.PK},
                ExpressionAttributeValues=to_attributes({":until": _number(until), ":now": _number(now)}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def reset(self, endpoint: Endpoint) -> None:
        """The endpoint answered: forget its failures."""
        self.client.delete_item(TableName=self.table_name, Key=self._key(endpoint))


def _number(value: float) -> Decimal:
    """Epoch seconds to the millisecond, as DynamoDB stores numbers."""
    return Decimal(str(round(value, 3)))
