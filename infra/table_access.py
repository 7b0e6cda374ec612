"""What each function may do to the table, declared once per function: the item actions its code calls and
the partitions it writes.

A function's writes are granted with a `dynamodb:LeadingKeys` condition naming exactly its partitions, so
a role that writes jobs cannot write an API key, a tenant or another function's items. Partitions are named
by the key builders in `shared.repository.schema` (their prefixes are derived from them), so a renamed
prefix moves the grant with it. Reads (`GetItem`) are not conditioned: a function reads what it is handed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from shared.repository import schema

KeyBuilder = Callable[..., str]


def partition_prefix(builder: KeyBuilder) -> str:
    """The constant start of every partition key the builder makes, up to and including its first `#`."""
    key = builder(*("x" for _ in inspect.signature(builder).parameters))
    return key[: key.index("#") + 1]


@dataclass(frozen=True)
class TableAccess:
    reads: tuple[str, ...] = ("GetItem",)
    writes: tuple[str, ...] = ()
    partitions: tuple[KeyBuilder, ...] = ()  # the key builders of the items `writes` may touch

    def __post_init__(self) -> None:
        if bool(self.writes) != bool(self.partitions):
            raise ValueError("a function that writes names the partitions it writes, and only then")

    @property
    def leading_keys(self) -> list[str]:
        return sorted({f"{partition_prefix(builder)}*" for builder in self.partitions})


TABLE_ACCESS: dict[str, TableAccess] = {
    # A job with its idempotency claim (one TransactWriteItems, checked as PutItem), the job's later writes
    # and its provider task claim; DeleteItem frees an idempotency claim whose job never reached a provider.
    # The same transaction takes the tenant's active-job slot and reserves the job's credits (two Updates under
    # the tenant's USAGE# partition).
    "api": TableAccess(
        writes=("PutItem", "UpdateItem", "DeleteItem"),
        partitions=(schema.job_pk, schema.idempotency_pk, schema.task_claim_pk, schema.tenant_usage_pk),
    ),
    "authorizer": TableAccess(),
    # A callback may record the task of a job still `submitting`, claiming the task with it.
    "callback": TableAccess(writes=("PutItem",), partitions=(schema.job_pk, schema.task_claim_pk)),
    # Hands a job to a provider (recording the task and its claim) and paces the provider: its window and count
    # are conditional Updates, a job's place in flight a TransactWriteItems of Update+Put or Delete+Update.
    "dispatch": TableAccess(
        writes=("PutItem", "UpdateItem", "DeleteItem"),
        partitions=(schema.job_pk, schema.task_claim_pk, schema.pace_pk),
    ),
    # The poller only asks about a task the job already holds: it never records a new one.
    "poll": TableAccess(writes=("PutItem",), partitions=(schema.job_pk,)),
    "archive": TableAccess(writes=("PutItem",), partitions=(schema.job_pk,)),
    # Settles a finished job: its tenant's admission (a marker Put and the tenant's counters, one transaction)
    # and its place in flight with its provider (a Delete and an Update, transacted; read back when refused).
    "notify": TableAccess(
        writes=("PutItem", "UpdateItem", "DeleteItem"),
        partitions=(schema.settlement_pk, schema.tenant_usage_pk, schema.pace_pk),
    ),
    # Reads the tenant (its webhook secret version); writes its endpoints' circuit breaker state only.
    "deliver": TableAccess(writes=("UpdateItem", "DeleteItem"), partitions=(schema.endpoint_pk,)),
}

# Written only with the operator's credentials (`kling-relay keys ...`, `tenants ...`), by no function.
OPERATOR_PARTITIONS: tuple[KeyBuilder, ...] = (schema.apikey_pk, schema.tenant_pk)
