"""Where moto differs from AWS in a way this system's guarantees depend on, made to behave like AWS.

DynamoDB evaluates a write's condition and applies the write atomically. moto's in-process backend
does neither under threads: two racing conditional writes can both pass their condition. The local
stack (a threaded server) and the tests (threads on purpose) serialize moto's DynamoDB writes, and
stream reads wait for a write in progress, so no reader sees half of a transaction.

moto rolls a failed TransactWriteItems back by swapping in a deep copy of each table taken before it.
That copies the whole table and its stream on every transaction (slower with every job), and leaves
the records the failed transaction wrote in the old stream, where open iterators still read them, while
the next real write reuses their sequence numbers in the new one: a stream reader would see a write
that never happened and miss one that did. Here a failed transaction is rolled back in place instead:
the items it named are restored and its stream records removed.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections.abc import Callable
from typing import Any

WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "batch_write_item")
_lock = threading.RLock()
_patched = False


def atomic_dynamodb_writes() -> None:
    """Serialize moto's DynamoDB writes and roll transactions back in place (idempotent; lasts for the process)."""
    global _patched  # noqa: PLW0603 (moto's backend classes are process-wide too)
    if _patched:
        return
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    patches: list[tuple[type, str, Callable[..., Any]]] = [
        *((DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name))) for name in WRITE_OPERATIONS),
        (DynamoDBBackend, "transact_write_items", _rolled_back_in_place(DynamoDBBackend.transact_write_items)),
        (DynamoDBStreamsBackend, "get_records", _single_use_iterators(_serialized(DynamoDBStreamsBackend.get_records))),
    ]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        # The only deep copy of a table in moto's DynamoDB backend is the transaction backup, made redundant
        # by the in-place rollback; item copies still happen.
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    setattr(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy))  # noqa: B010
    _patched = True


def _serialized(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(self, *args, **kwargs)

    return serialized


def _rolled_back_in_place(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def transact(self: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        with _lock:
            saved = _Snapshot.of(self, transact_items)
            try:
                return original(self, transact_items, *args, **kwargs)
            except BaseException:
                saved.restore()
                raise

    return transact


def _single_use_iterators(original: Callable[..., Any]) -> Callable[..., Any]:
    """Forget an iterator once read (moto keeps every one, and the shard it points at, for the process)."""

    @functools.wraps(original)
    def get_records(self: Any, iterator_arn: str, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, iterator_arn, *args, **kwargs)
        self.shard_iterators.pop(iterator_arn, None)
        return answer

    return get_records


class _Snapshot:
    """The items a transaction names, and each table's stream length, as they were before it ran."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any, Any, Any]] = []  # (table, hash key, range key, item or None)
        self.streams: dict[int, tuple[Any, int]] = {}

    @classmethod
    def of(cls, backend: Any, transact_items: list[dict[str, Any]]) -> _Snapshot:
        from moto.dynamodb.models.dynamo_type import DynamoType

        snapshot = cls()
        for entry in transact_items:
            if len(entry) != 1:
                continue  # moto refuses it before writing anything
            (op,) = entry.values()
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue  # refused by moto's validation before any write
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            snapshot.items.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            if table.stream_shard is not None:
                snapshot.streams.setdefault(id(table), (table, len(table.stream_shard.items)))
        return snapshot

    def restore(self) -> None:
        for table, hash_key, range_key, item in reversed(self.items):
            if range_key is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
            elif item is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = item
        for table, length in self.streams.values():
            del table.stream_shard.items[length:]
