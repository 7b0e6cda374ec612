"""Every use of moto's internals, in one place: where moto differs from AWS in a way this system's guarantees
depend on, made to behave like AWS, and what local mode reads or replaces inside moto. `missing_internals()`
names anything a moto upgrade took away (a test fails on it, naming the moto version).

Lambda: moto's "simple" Lambda backend never runs code; `lambda_invocations_served_by` routes its `Invoke`
(what Step Functions tasks call) to the real handlers. CloudFormation: `cloudformation_supported_types` reads
moto's model map to know which resource types its CloudFormation creates.

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
import importlib
import inspect
import json
import re
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
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


# -- Lambda ----------------------------------------------------------------------------------------------

LambdaInvoke = Callable[[str, bytes | None, dict[str, str]], bytes]  # (function name, payload, response headers)
_INVOKE_PARAMETERS = ("self", "function_name", "qualifier", "body", "headers", "response_headers")


@contextmanager
def lambda_invocations_served_by(invoke: LambdaInvoke) -> Iterator[None]:
    """While open, moto's Lambda `Invoke` answers with `invoke(name, payload, response_headers)`."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke

    def served(
        backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        return invoke(function_name, body, response_headers)

    LambdaSimpleBackend.invoke = served  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


# -- CloudFormation --------------------------------------------------------------------------------------

_SERVICE_MODULES = {"lambda": "awslambda", "dynamodb": "dynamodb", "stepfunctions": "stepfunctions"}


UsageSource = Callable[[str, "str | None", date, date], dict[str, list[list[int]]]]
USAGE_PATH = "{0}/usageplans/(?P<usage_plan_id>[^/]+)/usage$"
_usage_source: list[UsageSource] = []


def serve_usage_plan_usage() -> None:
    """Give moto's API Gateway the `GetUsage` route it lacks, answered by `set_usage_source`'s counts (the local
    API Gateway adapter's); before one is set, every key used nothing. Idempotent; before the server starts."""
    from moto.apigateway import urls

    urls.url_paths.setdefault(USAGE_PATH, _get_usage)


def set_usage_source(source: UsageSource | None) -> None:
    _usage_source[:] = [source] if source is not None else []


def _get_usage(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(full_url)
    plan_id = parts.path.rstrip("/").split("/")[-2]
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    try:
        start, end = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
    except (KeyError, ValueError):
        body = {"message": "startDate and endDate (YYYY-MM-DD) are required", "__type": "BadRequestException"}
        return 400, {"x-amzn-ErrorType": "BadRequestException"}, json.dumps(body)
    items = _usage_source[0](plan_id, query.get("keyId"), start, end) if _usage_source else {}
    answer = {"usagePlanId": plan_id, "startDate": start.isoformat(), "endDate": end.isoformat(), "values": items}
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


def cloudformation_supported_types(types: set[str]) -> set[str]:
    """The resource types moto's CloudFormation can create (each service's models imported first)."""
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    for service in {t.split("::")[1].lower() for t in types}:
        try:
            importlib.import_module(f"moto.{_SERVICE_MODULES.get(service, service)}.models")
        except ModuleNotFoundError:
            continue  # a service moto does not emulate at all: its types stay unsupported
    supported = set(get_model_map()) | set(NULL_MODELS)
    return {t for t in types if t in supported}


# -- what the above relies on ----------------------------------------------------------------------------


def missing_internals() -> list[str]:
    """What this module uses inside moto and the installed moto no longer has (empty when all is there)."""
    found: list[str] = []

    def need(module_name: str, *attributes: str) -> Any:
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError:
            found.append(module_name)
            return None
        for attribute in attributes:
            if not hasattr(module, attribute):
                found.append(f"{module_name}.{attribute}")
        return module

    dynamodb = need("moto.dynamodb.models", "DynamoDBBackend", "copy")
    if dynamodb is not None and hasattr(dynamodb, "DynamoDBBackend"):
        for name in (*WRITE_OPERATIONS, "transact_write_items"):
            if not hasattr(dynamodb.DynamoDBBackend, name):
                found.append(f"moto.dynamodb.models.DynamoDBBackend.{name}")
    table = need("moto.dynamodb.models.table", "Table")
    if table is not None and hasattr(table, "Table"):
        for name in ("get_item", "hash_key_attr", "range_key_attr", "stream_shard", "items"):
            if name not in _instance_attributes(table.Table):
                found.append(f"moto.dynamodb.models.table.Table.{name}")
    need("moto.dynamodb.models.dynamo_type", "DynamoType")
    streams = need("moto.dynamodbstreams.models", "DynamoDBStreamsBackend")
    if streams is not None and hasattr(streams, "DynamoDBStreamsBackend"):
        backend = streams.DynamoDBStreamsBackend
        if not hasattr(backend, "get_records"):
            found.append("moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_records")
        if "shard_iterators" not in _instance_attributes(backend):
            found.append("moto.dynamodbstreams.models.DynamoDBStreamsBackend.shard_iterators")
    lambdas = need("moto.awslambda_simple.models", "LambdaSimpleBackend")
    if lambdas is not None and hasattr(lambdas, "LambdaSimpleBackend"):
        parameters = tuple(inspect.signature(lambdas.LambdaSimpleBackend.invoke).parameters)
        if parameters != _INVOKE_PARAMETERS:
            found.append(
                f"moto.awslambda_simple.models.LambdaSimpleBackend.invoke{_INVOKE_PARAMETERS} (has {parameters})"
            )
    need("moto.apigateway.urls", "url_paths")
    need("moto.cloudformation.parsing", "NULL_MODELS", "get_model_map")
    need("moto.server", "ThreadedMotoServer")
    return found


def _instance_attributes(cls: type) -> set[str]:
    """Names a class defines, or assigns on `self` in its source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    return set(dir(cls)) | set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=", source))
