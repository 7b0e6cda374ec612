"""Running the deployed functions' real handler code in this process.

Each deployed function keeps its handler string and environment (as the template resolved them);
local-mode settings (where the provider emulator lives, short waits) are laid over that. An
invocation runs on the caller's thread with the function's own runtime installed, one at a time
per function (handler modules hold per-invocation state, as in a Lambda sandbox), unless the host is
allowed more (`concurrency`: the deliver function, whose handler keeps no such state, as many as its
queue mapping's MaximumConcurrency asks). The context's remaining time counts down from
the function's timeout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from local.aws.deploy import StackDeployer
from local.aws.moto_patches import lambda_invocations_served_by
from local.aws.sandboxes import SandboxError, SandboxPool
from local.aws.template import ACCOUNT_ID, REGION, Template
from local.synth import is_project_handler
from shared.runtime import Runtime, using_runtime
from shared.settings import ENV_PREFIX, Settings

Handler = Callable[[Any, Any], Any]

# Powertools' event handler keeps the event being resolved on a class (`BaseRouter.current_event`), shared by
# every resolver in a process. On Lambda each function has processes of its own; here the api and callback
# functions share this one, so invocations of functions built on a resolver take turns.
_RESOLVER_TURN = threading.Lock()


@dataclass(frozen=True)
class DeployedFunction:
    logical_id: str
    name: str
    handler: str
    environment: dict[str, str]
    timeout: int = 30
    memory: int = 256

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    @property
    def short_name(self) -> str:
        """`api`, `poll`, ... from the handler path `functions.<name>.handler.lambda_handler`."""
        return self.handler.split(".")[1]


class LambdaContext:
    def __init__(self, spec: DeployedFunction) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = "local"
        self._ends = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def deployed_functions(template: Template, deployer: StackDeployer) -> list[DeployedFunction]:
    """Every function of ours the template defines, as deployed: handler, resolved environment, timeout, memory."""
    specs = []
    for logical_id, resource in template.of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        if not is_project_handler(str(props["Handler"])):
            continue  # a function the CDK adds (the console's file deployment): local mode does its work itself
        variables = deployer.resolve(props.get("Environment", {})).get("Variables", {})
        specs.append(
            DeployedFunction(
                logical_id=logical_id,
                name=deployer.physical[logical_id],
                handler=props["Handler"],
                environment={key: str(value) for key, value in variables.items()},
                timeout=int(props.get("Timeout", 30)),
                memory=int(props.get("MemorySize", 256)),
            )
        )
    return specs


def settings_from_environment(environment: dict[str, str]) -> Settings:
    """Settings from a function's environment alone (never this process's own variables)."""
    values = {key[len(ENV_PREFIX) :].lower(): value for key, value in environment.items() if key.startswith(ENV_PREFIX)}
    return Settings.model_validate(values)


@dataclass
class Invocation:
    function: str
    ok: bool
    seconds: float


class FunctionHost:
    def __init__(self, spec: DeployedFunction, local_environment: dict[str, str], concurrency: int = 1) -> None:
        self.spec = spec
        self.environment = {**spec.environment, **local_environment}
        self.runtime = Runtime(settings_from_environment(self.environment))
        self._slots = threading.BoundedSemaphore(concurrency)
        self._counts = threading.Lock()
        self._handler: Handler | None = None
        self._uses_resolver = False
        self._sandboxes: SandboxPool | None = None
        self.concurrency = concurrency
        self.invocations = 0
        self.errors = 0

    @property
    def timeout_seconds(self) -> int:
        return self.spec.timeout

    def allow_concurrency(self, concurrency: int) -> None:
        """Let up to `concurrency` invocations run at once (before the first one; the handler must keep no
        per-invocation state at module level)."""
        if self.invocations:
            raise RuntimeError(f"{self.spec.name} has already run; set its concurrency before it does")
        self._slots = threading.BoundedSemaphore(concurrency)
        self.concurrency = concurrency

    def run_in_sandboxes(self, pool: SandboxPool) -> None:
        """Serve invocations from `pool`'s processes, several at once, instead of one at a time in this one."""
        self._sandboxes = pool
        self.concurrency = pool.count

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            module = importlib.import_module(module_name)
            self._uses_resolver = any(isinstance(value, BaseRouter) for value in vars(module).values())
            self._handler = getattr(module, attribute)
        return self._handler

    def invoke(self, event: Any) -> Any:
        """Run the handler; its exception propagates as a function error would."""
        if self._sandboxes is not None:
            with self._counts:
                self.invocations += 1
            try:
                return self._sandboxes.invoke(event)
            except SandboxError:
                with self._counts:
                    self.errors += 1
                raise
        handler = self.handler
        turn = _RESOLVER_TURN if self._uses_resolver else contextlib.nullcontext()
        with self._slots, turn, using_runtime(self.runtime):
            with self._counts:
                self.invocations += 1
            try:
                return handler(event, LambdaContext(self.spec))
            except Exception:
                with self._counts:
                    self.errors += 1
                raise


@dataclass
class FunctionRegistry:
    hosts: dict[str, FunctionHost] = field(default_factory=dict)  # by physical name

    def add(self, host: FunctionHost) -> None:
        self.hosts[host.spec.name] = host

    def by_short_name(self, short: str) -> FunctionHost:
        for host in self.hosts.values():
            if host.spec.short_name == short:
                return host
        raise KeyError(short)

    def by_logical_id(self, logical_id: str) -> FunctionHost:
        for host in self.hosts.values():
            if host.spec.logical_id == logical_id:
                return host
        raise KeyError(logical_id)

    def resolve(self, name_or_arn: str) -> FunctionHost:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        return self.hosts[name]

    @contextmanager
    def serving_moto_invocations(self) -> Iterator[None]:
        """Route moto's Lambda `Invoke` (used by Step Functions tasks) to the real handlers."""

        def invoke(function_name: str, body: bytes | None, response_headers: dict[str, str]) -> bytes:
            host = self.resolve(function_name)
            event = json.loads(body) if body else {}
            try:
                result = host.invoke(event)
            except Exception as exc:  # noqa: BLE001 (reported to the caller as Lambda reports a function error)
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
                return json.dumps(payload).encode()
            return json.dumps(result).encode()

        with lambda_invocations_served_by(invoke):
            yield
