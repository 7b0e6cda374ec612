"""Where moto's server spends its time under load, made cheaper without changing a single answer.

The local stack runs moto, the Step Functions interpreter and the provider emulator in one process, so
every request an app makes waits behind whatever moto is busy with. Measured in a burst of 200 jobs
(py-spy on the stack's process, `--gil`), the largest costs were not the emulated services at all:

- moto's model-driven response serializer walks every DynamoDB attribute value against botocore's shapes:
  44 ms for each stream `GetRecords` (over a quarter of the process's CPU), 2 ms for each `GetItem`. For
  the JSON-protocol data operations below, the result moto built is already the wire format, so it is
  written with `json.dumps` after one pass over it guided by the operation's output shape (bytes as base64,
  times as epoch seconds to the millisecond, absent and unknown members left out, as the serializer does).
  Anything else, and any error, still goes through moto's serializer.
- each execution lexes and parses its state machine's definition with ANTLR again; the parse tree is
  immutable, so it is kept per definition and only turned into fresh evaluation components per execution.
- each Lambda task of an execution builds a new boto3 client; one per region and role is kept instead.
- routing each request re-lists moto's package directory on disk.
- the first requests for a service after start load its botocore model and build its router in every thread
  that asks at once (moto's caches are plain `functools.cache`): when a burst starts, twenty executions' first
  Lambda tasks each loaded Lambda's model (0.5 to 2.3 s apiece, all holding the interpreter) while the burst's
  first requests waited. Those loads now happen once, one thread loading while the others wait for it, and
  `load_service_models` does them at start for the services the stack is known to call.
"""

from __future__ import annotations

import base64
import calendar
import functools
import importlib
import json
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

# Actions whose result moto builds as plain JSON in the wire format, per response class.
FAST_JSON_ACTIONS: dict[str, frozenset[str]] = {
    "DynamoHandler": frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
    | frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}),
    "DynamoDBStreamsHandler": frozenset({"GetRecords", "GetShardIterator"}),
}
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_installed = False
_install_lock = threading.Lock()


def speed_up_moto_server() -> None:
    """Install the shortcuts (idempotent; lasts for the process, as moto's classes do)."""
    global _installed  # noqa: PLW0603 (moto's classes are process-wide too)
    with _install_lock:
        if _installed:
            return
        from moto import backends
        from moto.core import responses, routing, utils
        from moto.core.responses import BaseResponse
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        BaseResponse.serialized = _fast_json(BaseResponse.serialized)  # type: ignore[method-assign]
        AmazonStateLanguageParser.parse = staticmethod(_parse_once(AmazonStateLanguageParser.parse))  # type: ignore[method-assign,assignment]
        lambda_eval_utils.boto_client_for = _client_per_region(lambda_eval_utils.boto_client_for)  # type: ignore[attr-defined]
        backends.list_of_moto_modules = _listed_once(backends.list_of_moto_modules)
        # moto's modules import these by name: each module's name is replaced, all by the same loader.
        for name, modules in (
            ("get_service_model", (utils, responses, routing)),
            ("get_service_router", (routing, responses)),
        ):
            loader = _one_load_at_a_time(getattr(routing, name))
            for module in modules:
                setattr(module, name, loader)
        routing.ServiceOperationRouter._get_router = _one_load_at_a_time(routing.ServiceOperationRouter._get_router)  # type: ignore[method-assign]
        _installed = True


def load_service_models(services: Iterable[str]) -> None:
    """Load each service's model and build its request router now, not while the first requests wait."""
    from moto.core.request import determine_request_protocol
    from moto.core.routing import get_router_class, get_service_router
    from moto.core.utils import get_service_model

    for service in services:
        model = get_service_model(service)
        protocol = determine_request_protocol(model)
        if get_router_class(service, protocol) is not None:
            get_service_router(service)._get_router(protocol)
        for action in FAST_JSON_ACTIONS.get(_HANDLERS.get(service, ""), ()):
            _output_shape(service, action)


def _one_load_at_a_time(original: Callable[..., Any]) -> Callable[..., Any]:
    """`original` (cached) called by one thread at a time: the others wait for its load, then find it cached."""
    lock = threading.Lock()

    @functools.wraps(original)
    def loaded(*args: Any) -> Any:
        with lock:
            return original(*args)

    return loaded


# -- responses -------------------------------------------------------------------------------------------


def _fast_json(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def serialized(self: Any, action_result: Any) -> Any:
        body = fast_json_body(type(self).__name__, self._get_action(), action_result.result)
        if body is None:
            return original(self, action_result)
        headers = {"Content-Type": JSON_CONTENT_TYPE, **self.response_headers}
        return 200, headers, body

    return serialized


def fast_json_body(handler: str, action: str | None, result: Any) -> str | None:
    """The response body for `result`, or None where moto's own serializer must write it."""
    service = _SERVICES.get(handler)
    if service is None or action not in FAST_JSON_ACTIONS[handler] or not isinstance(result, dict):
        return None
    try:
        return json.dumps(_wire(result, _output_shape(service, action)), separators=(",", ":"))
    except (TypeError, ValueError):
        return None  # a value this shortcut does not know how to write: the serializer does


_SERVICES = {"DynamoHandler": "dynamodb", "DynamoDBStreamsHandler": "dynamodbstreams"}
_HANDLERS = {service: handler for handler, service in _SERVICES.items()}


@_one_load_at_a_time
@functools.cache
def _output_shape(service: str, action: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service).operation_model(action).output_shape


def _wire(value: Any, shape: Any) -> Any:
    """`value` as the serializer writes it for `shape`: members the shape lacks and absent ones left out."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise TypeError(f"{shape.name} is not a mapping")
        members = shape.members
        return {key: _wire(item, members[key]) for key, item in value.items() if key in members and item is not None}
    if kind == "list":
        return [_wire(member, shape.member) for member in value]
    if kind == "map":
        return {key: _wire(member, shape.value) for key, member in value.items() if member is not None}
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode("ascii")
    if kind == "timestamp":
        if not isinstance(value, datetime):
            raise TypeError("a timestamp moto did not keep as a datetime")
        return _epoch_seconds(value)
    if isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not plain JSON: {type(value).__name__}")


def _epoch_seconds(value: datetime) -> int | float:
    """Whole seconds, or truncated to the millisecond (moto's naive times are UTC)."""
    seconds = calendar.timegm(value.utctimetuple() if value.tzinfo else value.timetuple())
    return seconds + (value.microsecond // 1000) / 1000 if value.microsecond else seconds


# -- Step Functions ------------------------------------------------------------------------------------


def _parse_once(original: Callable[[str], tuple[Any, Any]]) -> Callable[[str], tuple[Any, Any]]:
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    trees: dict[str, Any] = {}
    lock = threading.Lock()  # executions started at once parse a new definition once, not each

    @functools.wraps(original)
    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
            if tree is None:
                program, tree = original(definition)  # raises on a definition that does not parse: nothing kept
                trees[definition] = tree
                return program, tree
        return Preprocessor().visit(tree), tree

    return parse


def _client_per_region(original: Callable[..., Any]) -> Callable[..., Any]:
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, json.dumps(state_credentials, sort_keys=True, default=str))
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region=region, service=service, state_credentials=state_credentials)
            return client

    return boto_client_for


def _listed_once(original: Callable[[], Any]) -> Callable[[], tuple[str, ...]]:
    return functools.cache(lambda: tuple(original()))


# -- what the above relies on ----------------------------------------------------------------------------


def missing_internals() -> list[str]:
    """What the shortcuts replace inside moto and the installed moto no longer has."""
    wanted = {
        "moto.backends": ("list_of_moto_modules",),
        "moto.core.request": ("determine_request_protocol",),
        "moto.core.responses": ("BaseResponse", "get_service_model", "get_service_router"),
        "moto.core.routing": ("ServiceOperationRouter", "get_router_class", "get_service_model", "get_service_router"),
        "moto.core.utils": ("get_service_model",),
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils": ("boto_client_for",),
        "moto.stepfunctions.parser.asl.parse.asl_parser": ("AmazonStateLanguageParser",),
        "moto.stepfunctions.parser.asl.parse.preprocessor": ("Preprocessor",),
    }
    found: list[str] = []
    for module_name, attributes in wanted.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            found.append(module_name)
            continue
        found.extend(f"{module_name}.{name}" for name in attributes if not hasattr(module, name))
    return found
