"""The single table's key layout, shared by the repository, `infra/` and the test fixtures."""

from __future__ import annotations

PK = "pk"
SK = "sk"
GSI1 = "by_owner"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"
# A tenant's jobs in one status, newest first: `GET /jobs?status=` reads one page, not the tenant's history.
# Every job item carries its keys (jobs are written whole), so a status change moves the job between partitions.
GSI2 = "by_status"
GSI2_PK = "gsi2pk"
GSI2_SK = "gsi2sk"
TTL_ATTRIBUTE = "ttl"
ENTITY = "entity"

JOB_SK = "JOB"
APIKEY_SK = "APIKEY"
TENANT_SK = "TENANT"
IDEMPOTENCY_SK = "IDEM"
ENDPOINT_SK = "ENDPOINT"
TASK_CLAIM_SK = "TASK"
# A tenant's admission counters, beside (not in) the tenant's own partition, which only the operator writes.
ACTIVE_SK = "ACTIVE"
# A finished job's admission was settled (active slot and reserved credits released): written once.
SETTLED_SK = "SETTLED"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def tenant_jobs_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def tenant_status_pk(tenant_id: str, status: str) -> str:
    return f"TENANT#{tenant_id}#STATUS#{status}"


def tenant_keys_pk(tenant_id: str) -> str:
    return f"KEYS#{tenant_id}"


def apikey_pk(key_sha256: str) -> str:
    return f"APIKEY#{key_sha256}"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def tenant_usage_pk(tenant_id: str) -> str:
    """A tenant's admission counters: its active jobs (`ACTIVE`) and its credits per month (`tenant_month_sk`)."""
    return f"USAGE#{tenant_id}"


def tenant_month_sk(month: str) -> str:
    """A tenant's credits in one month (`YYYY-MM`, UTC)."""
    return f"MONTH#{month}"


def settlement_pk(job_id: str) -> str:
    """The marker that a finished job's admission was settled."""
    return f"SETTLED#{job_id}"


def idempotency_pk(tenant_id: str, key_sha256: str) -> str:
    return f"IDEM#{tenant_id}#{key_sha256}"


def endpoint_pk(tenant_id: str, url_sha256: str) -> str:
    """A tenant's webhook endpoint (its URL's hash): the endpoint's circuit breaker state."""
    return f"WEBHOOK#{tenant_id}#{url_sha256}"


def task_claim_pk(provider: str, task_sha256: str) -> str:
    """A provider task (its id's hash) and the one job allowed to hold it."""
    return f"TASK#{provider}#{task_sha256}"


def pace_pk(provider: str) -> str:
    """One provider's pacing: its submit window, its count of tasks in flight and each job's place in it."""
    return f"PACE#{provider}"


def table_definition() -> dict[str, object]:
    """CreateTable arguments matching the deployed table (used by moto fixtures and local mode)."""
    return {
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in (PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK)
        ],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": GSI1_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI1_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": GSI2,
                "KeySchema": [
                    {"AttributeName": GSI2_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI2_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
