"""API keys are stored only as hashes; revocation; tenants."""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import NotFoundError
from shared.repository.keys import KeyRepository, hash_key


def test_a_new_key_is_found_by_its_hash_only(keys: KeyRepository, dynamodb: Any) -> None:
    new = keys.create_key("tenant-a")
    found = keys.lookup(new.api_key)
    assert found is not None
    assert found.tenant_id == "tenant-a"
    assert found.active
    items = dynamodb.scan(TableName=keys.table_name)["Items"]
    assert not any(new.api_key in str(item) for item in items)
    assert any(hash_key(new.api_key) in str(item) for item in items)


@pytest.mark.parametrize("candidate", ["", "kr_", "kr_unknown", "Bearer x", "x" * 500, "kr_" + "a" * 200])
def test_unknown_or_malformed_keys_are_not_found(keys: KeyRepository, candidate: str) -> None:
    keys.create_key("tenant-a")
    assert keys.lookup(candidate) is None


def test_revoke_by_key_and_by_id(keys: KeyRepository) -> None:
    first, second = keys.create_key("tenant-a"), keys.create_key("tenant-a")
    keys.revoke(api_key=first.api_key)
    keys.revoke(tenant_id="tenant-a", key_id=second.record.key_id)
    assert not keys.lookup(first.api_key).active  # type: ignore[union-attr]
    assert not keys.lookup(second.api_key).active  # type: ignore[union-attr]


def test_revoking_twice_keeps_the_first_revocation_time(keys: KeyRepository) -> None:
    new = keys.create_key("tenant-a")
    keys.revoke(api_key=new.api_key)
    first = keys.lookup(new.api_key)
    keys.revoke(api_key=new.api_key)
    assert keys.lookup(new.api_key) == first


def test_revoking_unknown_keys_is_not_found(keys: KeyRepository) -> None:
    with pytest.raises(NotFoundError):
        keys.revoke(api_key="kr_nope")
    keys.create_key("tenant-a")
    with pytest.raises(NotFoundError):
        keys.revoke(tenant_id="tenant-b", key_id="000000000000")


def test_list_keys_is_per_tenant(keys: KeyRepository) -> None:
    a1, a2, b1 = keys.create_key("tenant-a"), keys.create_key("tenant-a"), keys.create_key("tenant-b")
    assert {rec.key_id for _, rec in keys.list_keys("tenant-a")} == {a1.record.key_id, a2.record.key_id}
    assert [rec.key_id for _, rec in keys.list_keys("tenant-b")] == [b1.record.key_id]


def test_tenant_is_created_once_and_rotation_bumps_the_secret_version(keys: KeyRepository) -> None:
    created = keys.ensure_tenant("tenant-a")
    assert keys.ensure_tenant("tenant-a") == created
    assert keys.rotate_webhook_secret("tenant-a").webhook_secret_version == created.webhook_secret_version + 1
    assert keys.get_tenant("tenant-z") is None
