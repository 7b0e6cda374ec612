"""Where moto differs from AWS in a way this system's guarantees depend on, made to behave like AWS.

DynamoDB evaluates a write's condition and applies the write atomically. moto's in-process backend
does neither under threads: two racing conditional writes can both pass their condition. The local
stack (a threaded server) and the tests (threads on purpose) serialize moto's DynamoDB writes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_patched = False


def atomic_dynamodb_writes() -> None:
    """Serialize moto's DynamoDB writes (idempotent; lasts for the process)."""
    global _patched  # noqa: PLW0603 (moto's backend class is process-wide too)
    if _patched:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITE_OPERATIONS:
        original: Callable[..., Any] = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def serialized(self: Any, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, serialized)
    _patched = True
