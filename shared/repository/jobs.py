"""Jobs, idempotency records and provider task claims in the single DynamoDB table.

Every write after creation is a full put conditioned on the status and version the writer read,
so of two racing writers exactly one wins and the loser re-reads. The table's stream is the
outbox: each stored change is what archive and notify react to.

A write that gives a job its provider task id also claims (provider, task id) in the same
transaction, so no two jobs ever hold the same provider task.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from shared.errors import (
    BadRequestError,
    IdempotencyConflictError,
    NotFoundError,
    StaleVersionError,
    TaskClaimedError,
)
from shared.lifecycle import check_transition
from shared.models.common import JOB_ID, JobStatus, ProviderName, utcnow
from shared.models.job import JobRecord
from shared.repository import schema
from shared.repository.codec import error_code, from_attributes, model_to_attributes, to_attributes
from shared.repository.table import TableRepository
from shared.repository.tenant_usage import Admission, admission_updates

MAX_PAGE = 100


@dataclass(frozen=True)
class IdempotencyClaim:
    """An `Idempotency-Key` and the fingerprint of the request that came with it."""

    tenant_id: str
    key: str
    fingerprint: str

    @property
    def pk(self) -> str:
        return schema.idempotency_pk(self.tenant_id, hashlib.sha256(self.key.encode()).hexdigest())


@dataclass(frozen=True)
class CreateResult:
    job: JobRecord
    created: bool


@dataclass(frozen=True)
class Page:
    items: list[JobRecord]
    next_cursor: str | None


class AdmissionRefused(Exception):
    """Creating the job would exceed one of its tenant's limits (`max_active_jobs` or `monthly_credits`)."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"the tenant's {limit} limit is reached")
        self.limit = limit


def _conditional_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def _failed_conditions(exc: ClientError) -> list[bool]:
    """For a cancelled transaction, which of its items failed their condition (in order)."""
    reasons = exc.response.get("CancellationReasons") or []
    return [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]


def task_claim_key(provider: str, task_id: str) -> dict[str, Any]:
    # Hashed: a provider's task id is its own string, of any length and alphabet.
    digest = hashlib.sha256(task_id.encode()).hexdigest()
    return to_attributes({schema.PK: schema.task_claim_pk(provider, digest), schema.SK: schema.TASK_CLAIM_SK})


class JobRepository(TableRepository):
    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        retention_days: int = 0,
        idempotency_ttl_seconds: int = 86_400,
    ) -> None:
        super().__init__(table_name, client)
        self.retention_days = retention_days
        self.idempotency_ttl_seconds = idempotency_ttl_seconds

    # -- items ---------------------------------------------------------------------------------

    def _item(self, job: JobRecord) -> dict[str, Any]:
        item = model_to_attributes(job)
        extra: dict[str, Any] = {
            schema.PK: schema.job_pk(job.id),
            schema.SK: schema.JOB_SK,
            schema.ENTITY: "job",
            schema.GSI1_PK: schema.tenant_jobs_pk(job.tenant_id),
            schema.GSI1_SK: job.id,
            schema.GSI2_PK: schema.tenant_status_pk(job.tenant_id, job.status.value),
            schema.GSI2_SK: job.id,
        }
        if job.terminal and self.retention_days and job.completed_at is not None:
            expiry = job.completed_at + timedelta(days=self.retention_days)
            extra[schema.TTL_ATTRIBUTE] = int(expiry.timestamp())
        item.update(to_attributes(extra))
        return item

    @staticmethod
    def record_from_item(item: dict[str, Any]) -> JobRecord:
        """A job from a typed attribute map (a GetItem answer or a stream image)."""
        return JobRecord.model_validate(from_attributes(item))

    # -- create --------------------------------------------------------------------------------

    def create(
        self, job: JobRecord, claim: IdempotencyClaim | None = None, admission: Admission | None = None
    ) -> CreateResult:
        """Store a new job; with a claim, atomically with its idempotency record; with an admission, atomically
        with taking its tenant's active slot and reserving its credits.

        A claim already held for the same request returns the job it created; for another
        request it is an `IdempotencyConflictError`. A limit the admission would exceed is an
        `AdmissionRefused` naming it, and nothing is written.
        """
        put_job = {
            "TableName": self.table_name,
            "Item": self._item(job),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": schema.PK},
        }
        if claim is None and admission is None:
            self.client.put_item(**put_job)
            return CreateResult(job=job, created=True)

        now = utcnow()
        items: list[dict[str, Any]] = [{"Put": put_job}]
        if claim is not None:
            items.append({"Put": self._claim_item(claim, job.id, now)})
        if admission is not None:
            take_slot, reserve = admission_updates(self.table_name, admission, now)
            items += [{"Update": take_slot}, {"Update": reserve}]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            failed = [
                index
                for index, reason in enumerate(exc.response.get("CancellationReasons") or [])
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            # A replayed request is answered with its job even when the tenant is at a limit now.
            if claim is not None and (1 in failed or not failed):
                return self._resolve_claim(claim)
            if admission is not None:
                first_counter = len(items) - 2
                if first_counter in failed:
                    raise AdmissionRefused("max_active_jobs") from exc
                if first_counter + 1 in failed:
                    raise AdmissionRefused("monthly_credits") from exc
            raise StaleVersionError("the job could not be recorded; retry the request") from exc
        return CreateResult(job=job, created=True)

    def _claim_item(self, claim: IdempotencyClaim, job_id: str, now: datetime) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": to_attributes(
                {
                    schema.PK: claim.pk,
                    schema.SK: schema.IDEMPOTENCY_SK,
                    schema.ENTITY: "idempotency",
                    "fingerprint": claim.fingerprint,
                    "job_id": job_id,
                    "created_at": now.isoformat(),
                    schema.TTL_ATTRIBUTE: int(now.timestamp()) + self.idempotency_ttl_seconds,
                }
            ),
            "ConditionExpression": "attribute_not_exists(#pk) OR #ttl < :now",
            "ExpressionAttributeNames": {"#pk": schema.PK, "#ttl": schema.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
        }

    def _resolve_claim(self, claim: IdempotencyClaim) -> CreateResult:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=to_attributes({schema.PK: claim.pk, schema.SK: schema.IDEMPOTENCY_SK}),
            ConsistentRead=True,
        )
        if "Item" not in answer:
            # The transaction failed for another reason (a job id collision is 2^-80 unlikely).
            raise StaleVersionError("the job could not be recorded; retry the request")
        record = from_attributes(answer["Item"])
        if record["fingerprint"] != claim.fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used with a different request",
                details={"job_id": record["job_id"]},
            )
        existing = self.get(record["job_id"])
        if existing is None:
            raise StaleVersionError("the job for this Idempotency-Key is not readable yet; retry")
        return CreateResult(job=existing, created=False)

    def release_claim(self, claim: IdempotencyClaim, job_id: str) -> None:
        """Free an idempotency key whose job never reached a provider, so a retry can try again."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=to_attributes({schema.PK: claim.pk, schema.SK: schema.IDEMPOTENCY_SK}),
                ConditionExpression="job_id = :job",
                ExpressionAttributeValues={":job": {"S": job_id}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # -- read ----------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        if not JOB_ID.fullmatch(job_id):
            return None
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=to_attributes({schema.PK: schema.job_pk(job_id), schema.SK: schema.JOB_SK}),
            ConsistentRead=True,
        )
        return self.record_from_item(answer["Item"]) if "Item" in answer else None

    def get_for_tenant(self, tenant_id: str, job_id: str) -> JobRecord:
        """The tenant's job; another tenant's job is as absent as a missing one."""
        job = self.get(job_id)
        if job is None or job.tenant_id != tenant_id:
            raise NotFoundError(f"no job {job_id}")
        return job

    def list_for_tenant(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None = None,
        provider: ProviderName | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """Newest first. The cursor is the last job returned, so pages neither skip nor repeat.

        A status filter reads the tenant's jobs in that status only (the `by_status` index), so one page costs
        one query however long the tenant's history; a provider filter is applied to what the index returns.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequestError(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
        source = _Index.status(tenant_id, status) if status is not None else _Index.owner(tenant_id)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": source.name,
            "KeyConditionExpression": "#gpk = :gpk",
            "ExpressionAttributeNames": {"#gpk": source.pk_attribute},
            "ExpressionAttributeValues": {":gpk": {"S": source.pk}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if provider is not None:
            query["FilterExpression"] = "#provider = :provider"
            query["ExpressionAttributeNames"]["#provider"] = "provider"
            query["ExpressionAttributeValues"][":provider"] = {"S": provider}
        if cursor is not None:
            query["ExclusiveStartKey"] = source.start_key(decode_cursor(cursor))

        items: list[JobRecord] = []
        more = False
        while True:
            answer = self.client.query(**query)
            raw_items = answer.get("Items", [])
            last_key = answer.get("LastEvaluatedKey")
            for index, raw in enumerate(raw_items):
                items.append(self.record_from_item(raw))
                if len(items) == limit:
                    more = index < len(raw_items) - 1 or last_key is not None
                    break
            if len(items) == limit or last_key is None:
                break
            query["ExclusiveStartKey"] = last_key
        return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

    def backfill_status_index(self, *, page_size: int = 100) -> int:
        """Give the `by_status` index keys to job items written before it existed; the number updated.

        Each update is conditioned on the item still lacking the keys and still having the status and version
        it was read with, so a job that changed meanwhile (and got its keys from that write) is left alone.
        The status does not change, so no event is published.
        """
        updated = 0
        scan: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "#entity = :job AND attribute_not_exists(#gpk)",
            "ExpressionAttributeNames": {"#entity": schema.ENTITY, "#gpk": schema.GSI2_PK},
            "ExpressionAttributeValues": {":job": {"S": "job"}},
            "Limit": page_size,
        }
        while True:
            answer = self.client.scan(**scan)
            for item in answer.get("Items", []):
                job = self.record_from_item(item)
                try:
                    self.client.update_item(
                        TableName=self.table_name,
                        Key=to_attributes({schema.PK: schema.job_pk(job.id), schema.SK: schema.JOB_SK}),
                        UpdateExpression="SET #gpk = :gpk, #gsk = :gsk",
                        ConditionExpression="attribute_not_exists(#gpk) AND #status = :status AND #version = :version",
                        ExpressionAttributeNames={
                            "#gpk": schema.GSI2_PK,
                            "#gsk": schema.GSI2_SK,
                            "#status": "status",
                            "#version": "version",
                        },
                        ExpressionAttributeValues={
                            ":gpk": {"S": schema.tenant_status_pk(job.tenant_id, job.status.value)},
                            ":gsk": {"S": job.id},
                            ":status": {"S": job.status.value},
                            ":version": {"N": str(job.version)},
                        },
                    )
                except ClientError as exc:
                    if not _conditional_failed(exc):
                        raise
                    continue
                updated += 1
            if "LastEvaluatedKey" not in answer:
                return updated
            scan["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def task_holder(self, provider: str, task_id: str) -> str | None:
        """The id of the job holding the provider's task, if any job does."""
        answer = self.client.get_item(
            TableName=self.table_name, Key=task_claim_key(provider, task_id), ConsistentRead=True
        )
        return from_attributes(answer["Item"])["job_id"] if "Item" in answer else None

    # -- write ---------------------------------------------------------------------------------

    def _replace(self, current: JobRecord, new: JobRecord) -> JobRecord:
        put_job = {
            "TableName": self.table_name,
            "Item": self._item(new),
            "ConditionExpression": "#status = :status AND #version = :version",
            "ExpressionAttributeNames": {"#status": "status", "#version": "version"},
            "ExpressionAttributeValues": {
                ":status": {"S": current.status.value},
                ":version": {"N": str(current.version)},
            },
        }
        stale = f"job {current.id} changed since version {current.version}"
        task_id = new.provider_task_id
        if task_id is None or (task_id, new.provider) == (current.provider_task_id, current.provider):
            try:
                self.client.put_item(**put_job)
            except ClientError as exc:
                if _conditional_failed(exc):
                    raise StaleVersionError(stale) from exc
                raise
            return new
        try:
            self.client.transact_write_items(TransactItems=[{"Put": put_job}, {"Put": self._task_claim(new, task_id)}])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            failed = _failed_conditions(exc)
            claimed = failed[1] if len(failed) == 2 else self.task_holder(new.provider, task_id) not in (None, new.id)
            if claimed and not (failed and failed[0]):
                raise TaskClaimedError(
                    f"{new.provider} task {task_id} is held by another job", details={"job_id": new.id}
                ) from exc
            # The job changed meanwhile (or the transaction met a concurrent one): re-read and decide again.
            raise StaleVersionError(stale) from exc
        return new

    def _task_claim(self, job: JobRecord, task_id: str) -> dict[str, Any]:
        """The put claiming the job's provider task: only if no other job holds it."""
        attributes: dict[str, Any] = {
            schema.ENTITY: "task_claim",
            "provider": job.provider,
            "task_id": task_id,
            "job_id": job.id,
        }
        if self.retention_days:
            # Kept as long as the job may be: it cannot finish later than its deadline.
            expiry = job.deadline_at + timedelta(days=self.retention_days + 1)
            attributes[schema.TTL_ATTRIBUTE] = int(expiry.timestamp())
        return {
            "TableName": self.table_name,
            "Item": {**task_claim_key(job.provider, task_id), **to_attributes(attributes)},
            "ConditionExpression": "attribute_not_exists(#pk) OR #job = :job",
            "ExpressionAttributeNames": {"#pk": schema.PK, "#job": "job_id"},
            "ExpressionAttributeValues": {":job": {"S": job.id}},
        }

    def _next(self, current: JobRecord, changes: dict[str, Any]) -> JobRecord:
        now = utcnow()
        merged = current.model_dump()
        merged.update(changes)
        merged["version"] = current.version + 1
        merged["updated_at"] = now
        try:
            return JobRecord.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"invalid change to job {current.id}: {exc}") from exc

    def transition(self, current: JobRecord, target: JobStatus, **changes: Any) -> JobRecord:
        """Move `current` to `target` if it is still as read; raises `StaleVersionError` otherwise."""
        check_transition(current.status, target)
        changes["status"] = target
        if target.terminal:
            changes.setdefault("completed_at", utcnow())
        return self._replace(current, self._next(current, changes))

    def update(self, current: JobRecord, **changes: Any) -> JobRecord:
        """Change fields other than the status (progress, attempts, poll count) under the same guard."""
        if "status" in changes:
            raise ValueError("use transition() to change the status")
        return self._replace(current, self._next(current, changes))


@dataclass(frozen=True)
class _Index:
    """A GSI a tenant's jobs are listed from, newest first, and the partition to read."""

    name: str
    pk_attribute: str
    sk_attribute: str
    pk: str

    @classmethod
    def owner(cls, tenant_id: str) -> _Index:
        return cls(schema.GSI1, schema.GSI1_PK, schema.GSI1_SK, schema.tenant_jobs_pk(tenant_id))

    @classmethod
    def status(cls, tenant_id: str, status: JobStatus) -> _Index:
        return cls(schema.GSI2, schema.GSI2_PK, schema.GSI2_SK, schema.tenant_status_pk(tenant_id, status.value))

    def start_key(self, job_id: str) -> dict[str, Any]:
        """The key of the job a page ended with: the table's and the index's."""
        return to_attributes(
            {
                schema.PK: schema.job_pk(job_id),
                schema.SK: schema.JOB_SK,
                self.pk_attribute: self.pk,
                self.sk_attribute: job_id,
            }
        )


def encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": job_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BadRequestError("cursor is not valid", details={"field": "cursor"}) from exc
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise BadRequestError("cursor is not valid", details={"field": "cursor"})
    return job_id
