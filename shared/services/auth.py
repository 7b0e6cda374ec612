"""Who is calling: a Bearer API key mapped to its tenant, or nobody."""

from __future__ import annotations

from dataclasses import dataclass

from shared.observability import logger
from shared.runtime import Runtime

BEARER = "bearer "


@dataclass(frozen=True)
class Identity:
    tenant_id: str
    key_id: str
    # The tenant's usage plan API key: API Gateway throttles and counts the request under it, and refuses a
    # request without one (every app route requires it).
    usage_key: str | None = None


def authenticate(rt: Runtime, authorization: str | None) -> Identity | None:
    """The key's tenant, or None for a missing, malformed, unknown or revoked key."""
    if not authorization or not authorization.lower().startswith(BEARER):
        return None
    # Spaces and tabs only: a key with any other character around it (a newline included) is not a key.
    api_key = authorization[len(BEARER) :].strip(" \t")
    record = rt.keys.lookup(api_key)
    if record is None:
        logger.info("unknown api key")
        return None
    if not record.active:
        logger.info("revoked api key", key_id=record.key_id)
        return None
    return Identity(
        tenant_id=record.tenant_id, key_id=record.key_id, usage_key=rt.keys.usage_identifier(record.tenant_id)
    )
