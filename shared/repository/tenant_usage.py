"""A tenant's admission counters: active jobs and credits per month, in the tenant's `USAGE#` partition.

A job takes an active slot and reserves its estimated credits in the same transaction that stores it
(`JobRepository.create` with an `Admission`); the stream consumer settles it once when it ends: the slot
is released and the reservation replaced by what the job finally cost. A marker item (`SETTLED#<job>`) makes
the settlement happen once however often the stream delivers the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.models.common import PROVIDER_NAMES, JobStatus, ProviderName, utcnow
from shared.models.job import JobRecord
from shared.repository import schema
from shared.repository.codec import error_code, from_attributes, number, to_attributes
from shared.repository.table import TableRepository

# How long a settlement marker outlives the settlement: far beyond the stream's 24 h retention.
MARKER_TTL = timedelta(days=30)


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def credits_attribute(provider: ProviderName) -> str:
    return f"credits_{provider}"


@dataclass(frozen=True)
class Admission:
    """What a new job takes from its tenant, and the limits it is taken under (None: unlimited)."""

    tenant_id: str
    month: str
    credits: float
    max_active_jobs: int | None = None
    monthly_credits: float | None = None


@dataclass(frozen=True)
class MonthUsage:
    month: str
    # Reserved for unfinished jobs plus the final cost of finished ones: what counts against the budget.
    credits_committed: float = 0.0
    jobs: int = 0
    by_provider: dict[str, float] = field(default_factory=dict)


def _active_key(tenant_id: str) -> dict[str, Any]:
    return to_attributes({schema.PK: schema.tenant_usage_pk(tenant_id), schema.SK: schema.ACTIVE_SK})


def _month_key(tenant_id: str, month: str) -> dict[str, Any]:
    return to_attributes({schema.PK: schema.tenant_usage_pk(tenant_id), schema.SK: schema.tenant_month_sk(month)})


def admission_updates(table_name: str, admission: Admission, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tenant's active-slot update and the month's credit update, each conditioned on its limit (the first
    admission of a tenant, or of a month, creates the item)."""
    take_slot: dict[str, Any] = {
        "TableName": table_name,
        "Key": _active_key(admission.tenant_id),
        "UpdateExpression": "SET #entity = if_not_exists(#entity, :usage), updated_at = :now ADD active_jobs :one",
        "ExpressionAttributeNames": {"#entity": schema.ENTITY},
        "ExpressionAttributeValues": {":usage": {"S": "usage"}, ":now": {"S": now.isoformat()}, ":one": {"N": "1"}},
    }
    if admission.max_active_jobs is not None:
        take_slot["ConditionExpression"] = "attribute_not_exists(active_jobs) OR active_jobs < :max"
        take_slot["ExpressionAttributeValues"][":max"] = {"N": str(admission.max_active_jobs)}
    reserve: dict[str, Any] = {
        "TableName": table_name,
        "Key": _month_key(admission.tenant_id, admission.month),
        "UpdateExpression": "SET #entity = if_not_exists(#entity, :usage) ADD credits_committed :credits, jobs :one",
        "ExpressionAttributeNames": {"#entity": schema.ENTITY},
        "ExpressionAttributeValues": {
            ":usage": {"S": "usage"},
            ":credits": {"N": number(admission.credits)},
            ":one": {"N": "1"},
        },
    }
    if admission.monthly_credits is not None:
        # DynamoDB conditions cannot add, so the room left for this job is computed here.
        reserve["ConditionExpression"] = "attribute_not_exists(credits_committed) OR credits_committed <= :room"
        reserve["ExpressionAttributeValues"][":room"] = {"N": number(admission.monthly_credits - admission.credits)}
    return take_slot, reserve


def final_credits(job: JobRecord) -> float:
    """What a finished job counts against its budget.

    The provider's reported figure when there is one; the estimate for a job that succeeded without one;
    nothing for a job no provider took (no task id) or that ended without a result and without a bill.
    """
    if job.provider_task_id is None:
        return 0.0
    if job.cost is not None and not job.cost.estimated:
        return job.cost.amount
    if job.status is JobStatus.SUCCEEDED and job.cost is not None:
        return job.cost.amount
    return 0.0


class TenantUsageRepository(TableRepository):
    def active(self, tenant_id: str) -> int:
        """Jobs of the tenant admitted and not yet settled."""
        answer = self.client.get_item(TableName=self.table_name, Key=_active_key(tenant_id), ConsistentRead=True)
        return max(0, int(from_attributes(answer.get("Item", {})).get("active_jobs", 0)))

    def month(self, tenant_id: str, month: str) -> MonthUsage:
        answer = self.client.get_item(TableName=self.table_name, Key=_month_key(tenant_id, month), ConsistentRead=True)
        if "Item" not in answer:
            return MonthUsage(month=month)
        plain = from_attributes(answer["Item"])
        by_provider: dict[str, float] = {
            name: float(plain[credits_attribute(name)]) for name in PROVIDER_NAMES if credits_attribute(name) in plain
        }
        return MonthUsage(
            month=month,
            credits_committed=float(plain.get("credits_committed", 0)),
            jobs=int(plain.get("jobs", 0)),
            by_provider=by_provider,
        )

    def settle(self, job: JobRecord) -> bool:
        """Release a finished job's slot and settle its credits, once; False when it was already settled."""
        if not job.terminal or job.reserved_credits is None:
            return False
        spent = final_credits(job)
        now = utcnow()
        marker = {
            "Put": {
                "TableName": self.table_name,
                "Item": to_attributes(
                    {
                        schema.PK: schema.settlement_pk(job.id),
                        schema.SK: schema.SETTLED_SK,
                        schema.ENTITY: "settlement",
                        "tenant_id": job.tenant_id,
                        "credits": str(spent),
                        "settled_at": now.isoformat(),
                        schema.TTL_ATTRIBUTE: int((now + MARKER_TTL).timestamp()),
                    }
                ),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": schema.PK},
            }
        }
        release = {
            "Update": {
                "TableName": self.table_name,
                "Key": _active_key(job.tenant_id),
                "UpdateExpression": "ADD active_jobs :minus_one",
                "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
            }
        }
        month_update = "ADD credits_committed :delta"
        values = {":delta": {"N": number(spent - job.reserved_credits)}}
        names: dict[str, str] = {}
        if spent:
            month_update += ", #provider_credits :spent"
            names["#provider_credits"] = credits_attribute(job.provider)
            values[":spent"] = {"N": number(spent)}
        settle_month: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _month_key(job.tenant_id, month_of(job.created_at)),
            "UpdateExpression": month_update,
            "ExpressionAttributeValues": values,
        }
        if names:
            settle_month["ExpressionAttributeNames"] = names
        try:
            self.client.transact_write_items(TransactItems=[marker, release, {"Update": settle_month}])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True
