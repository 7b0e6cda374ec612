"""API keys (stored only as SHA-256 hashes) and tenants."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import NotFoundError
from shared.models.common import Timestamp, utcnow
from shared.repository import schema
from shared.repository.codec import error_code, from_attributes, model_to_attributes, number, to_attributes
from shared.repository.table import TableRepository

KEY_PREFIX = "kr_"
# `kr_` + `secrets.token_urlsafe(32)`; matched whole (see shared.models.common on `$` and fullmatch).
API_KEY = re.compile(r"kr_[A-Za-z0-9_-]{43}")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class ApiKeyRecord(BaseModel):
    key_id: str
    tenant_id: str
    created_at: Timestamp
    revoked_at: Timestamp | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TenantRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: str
    webhook_secret_version: int = 1
    created_at: Timestamp
    # The API Gateway usage plan tier its requests are throttled and counted under (None: the default tier).
    tier: str | None = None
    # Admission caps; None is unlimited.
    max_active_jobs: int | None = Field(default=None, ge=0)
    monthly_credits: float | None = Field(default=None, ge=0)
    # The API Gateway API key the authorizer names as the usage identifier (its id and value) and the usage plan
    # it is in. The value authenticates nothing (callers never send it); it says which plan counts the request.
    usage_key_id: str | None = None
    usage_key: str | None = None
    usage_plan_id: str | None = None


class TenantLimits(BaseModel):
    """What an operator sets on a tenant; a field left None is left as it is."""

    model_config = ConfigDict(extra="forbid")

    tier: str | None = None
    max_active_jobs: int | None = Field(default=None, ge=0)
    monthly_credits: float | None = Field(default=None, ge=0)


@dataclass(frozen=True)
class NewKey:
    api_key: str  # shown once, never stored
    record: ApiKeyRecord


class KeyRepository(TableRepository):
    # -- tenants -------------------------------------------------------------------------------

    def ensure_tenant(self, tenant_id: str) -> TenantRecord:
        tenant = TenantRecord(tenant_id=tenant_id, created_at=utcnow())
        item = model_to_attributes(tenant)
        item.update(
            to_attributes({schema.PK: schema.tenant_pk(tenant_id), schema.SK: schema.TENANT_SK, "entity": "tenant"})
        )
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": schema.PK},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = self.get_tenant(tenant_id)
            if existing is None:  # deleted between the two calls
                raise
            return existing
        return tenant

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=to_attributes({schema.PK: schema.tenant_pk(tenant_id), schema.SK: schema.TENANT_SK}),
            ConsistentRead=True,
        )
        return TenantRecord.model_validate(from_attributes(answer["Item"])) if "Item" in answer else None

    def rotate_webhook_secret(self, tenant_id: str) -> TenantRecord:
        """Bump the tenant's webhook secret version: deliveries from now on are signed with the new secret."""
        try:
            answer = self.client.update_item(
                TableName=self.table_name,
                Key=to_attributes({schema.PK: schema.tenant_pk(tenant_id), schema.SK: schema.TENANT_SK}),
                UpdateExpression="ADD webhook_secret_version :one",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": schema.PK},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFoundError(f"no tenant {tenant_id}") from exc
            raise
        return TenantRecord.model_validate(from_attributes(answer["Attributes"]))

    def set_limits(self, tenant_id: str, limits: TenantLimits, *, unlimited: tuple[str, ...] = ()) -> TenantRecord:
        """Set the fields given (and remove the caps named in `unlimited`) on an existing tenant."""
        names: dict[str, str] = {"#pk": schema.PK}
        values: dict[str, Any] = {}
        sets: list[str] = []
        for field, value in limits.model_dump(exclude_none=True).items():
            names[f"#{field}"] = field
            values[f":{field}"] = {"S": value} if isinstance(value, str) else {"N": number(value)}
            sets.append(f"#{field} = :{field}")
        removes = []
        for field in unlimited:
            if field not in ("max_active_jobs", "monthly_credits"):
                raise ValueError(f"{field} is not a cap")
            names[f"#{field}"] = field
            removes.append(f"#{field}")
        expression = (f"SET {', '.join(sets)} " if sets else "") + (f"REMOVE {', '.join(removes)}" if removes else "")
        if not expression:
            tenant = self.get_tenant(tenant_id)
            if tenant is None:
                raise NotFoundError(f"no tenant {tenant_id}")
            return tenant
        return self._update_tenant(tenant_id, expression.strip(), names, values)

    def set_usage_key(self, tenant_id: str, key_id: str, key_value: str, usage_plan_id: str) -> TenantRecord:
        return self._update_tenant(
            tenant_id,
            "SET usage_key_id = :id, usage_key = :value, usage_plan_id = :plan",
            {"#pk": schema.PK},
            {":id": {"S": key_id}, ":value": {"S": key_value}, ":plan": {"S": usage_plan_id}},
        )

    def usage_identifier(self, tenant_id: str) -> str | None:
        """The tenant's usage plan API key value (what the authorizer returns), read alone."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=to_attributes({schema.PK: schema.tenant_pk(tenant_id), schema.SK: schema.TENANT_SK}),
            ProjectionExpression="usage_key",
        )
        value = answer.get("Item", {}).get("usage_key", {}).get("S")
        return str(value) if value else None

    def _update_tenant(
        self, tenant_id: str, expression: str, names: dict[str, str], values: dict[str, Any]
    ) -> TenantRecord:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": to_attributes({schema.PK: schema.tenant_pk(tenant_id), schema.SK: schema.TENANT_SK}),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(#pk)",
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            update["ExpressionAttributeValues"] = values
        try:
            answer = self.client.update_item(**update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFoundError(f"no tenant {tenant_id}") from exc
            raise
        return TenantRecord.model_validate(from_attributes(answer["Attributes"]))

    # -- keys ----------------------------------------------------------------------------------

    def create_key(self, tenant_id: str) -> NewKey:
        self.ensure_tenant(tenant_id)
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(api_key)
        record = ApiKeyRecord(key_id=digest[:12], tenant_id=tenant_id, created_at=utcnow())
        item = model_to_attributes(record)
        item.update(
            to_attributes(
                {
                    schema.PK: schema.apikey_pk(digest),
                    schema.SK: schema.APIKEY_SK,
                    "entity": "apikey",
                    schema.GSI1_PK: schema.tenant_keys_pk(tenant_id),
                    schema.GSI1_SK: f"{record.created_at.isoformat()}#{record.key_id}",
                }
            )
        )
        self.client.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": schema.PK},
        )
        return NewKey(api_key=api_key, record=record)

    def lookup(self, api_key: str) -> ApiKeyRecord | None:
        """The key's record if the key exists (revoked or not); the caller checks `active`."""
        if not API_KEY.fullmatch(api_key):
            return None
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=to_attributes({schema.PK: schema.apikey_pk(hash_key(api_key)), schema.SK: schema.APIKEY_SK}),
        )
        return ApiKeyRecord.model_validate(from_attributes(answer["Item"])) if "Item" in answer else None

    def list_keys(self, tenant_id: str) -> list[tuple[str, ApiKeyRecord]]:
        """(hash, record) pairs of a tenant's keys, oldest first."""
        found: list[tuple[str, ApiKeyRecord]] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": schema.GSI1,
            "KeyConditionExpression": "#gpk = :gpk",
            "ExpressionAttributeNames": {"#gpk": schema.GSI1_PK},
            "ExpressionAttributeValues": {":gpk": {"S": schema.tenant_keys_pk(tenant_id)}},
        }
        while True:
            answer = self.client.query(**query)
            for raw in answer.get("Items", []):
                plain = from_attributes(raw)
                found.append((plain[schema.PK].removeprefix("APIKEY#"), ApiKeyRecord.model_validate(plain)))
            if "LastEvaluatedKey" not in answer:
                return found
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def revoke(self, *, api_key: str | None = None, tenant_id: str | None = None, key_id: str | None = None) -> None:
        """Revoke by the key itself, or by a tenant's key id (the first 12 hex of its hash)."""
        if api_key is not None:
            digest = hash_key(api_key)
        elif tenant_id is not None and key_id is not None:
            matches = [h for h, rec in self.list_keys(tenant_id) if rec.key_id == key_id]
            if not matches:
                raise NotFoundError(f"tenant {tenant_id} has no key {key_id}")
            digest = matches[0]
        else:
            raise ValueError("give the api key, or the tenant and key id")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_attributes({schema.PK: schema.apikey_pk(digest), schema.SK: schema.APIKEY_SK}),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": schema.PK},
                ExpressionAttributeValues={":now": {"S": utcnow().isoformat()}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFoundError("no such api key") from exc
            raise
