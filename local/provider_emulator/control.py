"""The `/_control` JSON API: faults, tasks, counters, callbacks and timing. See the package docstring."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from local.provider_emulator.engine import Engine
from local.provider_emulator.faults import FAULT_ADAPTER
from local.provider_emulator.limits import ProviderLimit
from local.provider_emulator.providers.base import Reply
from local.provider_emulator.tasks import Phase
from shared.models.common import PROVIDER_NAMES, ProviderName

PREFIX = "/_control"


class FinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "fail"]
    message: str | None = Field(default=None, min_length=1, max_length=500)


class ConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_seconds: float | None = Field(default=None, ge=0, le=3600)
    # a null value removes that provider's override
    provider_job_seconds: dict[ProviderName, Annotated[float, Field(ge=0, le=3600)] | None] | None = None
    callback_backoff_scale: float | None = Field(default=None, ge=0, le=100)
    variants: bool | None = None
    # a provider's entry replaces its limits; null removes them; providers left out keep theirs
    limits: dict[ProviderName, ProviderLimit | None] | None = None


class ControlError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _ok(body: Any, status: int = 200) -> Reply:
    return Reply(status, body)


def _json_body(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(400, f"request body is not valid JSON: {exc}") from exc


def _validation_message(exc: ValidationError) -> str:
    where, reason = _field_and_reason(exc)
    return f"{where}: {reason}"


def _field_and_reason(exc: ValidationError) -> tuple[str, str]:
    """The first error's field path (dict keys by name, pydantic's `[key]` marker dropped) and reason."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "[key]") or "body"
    return where, first["msg"].removeprefix("Value error, ")


class ControlApi:
    def __init__(self, engine: Engine, describe: Callable[[], dict[str, Any]]) -> None:
        self.engine = engine
        self.describe = describe

    def handle(self, method: str, path: str, query: Mapping[str, list[str]], raw: bytes) -> Reply:
        try:
            return self._route(method, path.removeprefix(PREFIX), query, raw)
        except ControlError as exc:
            if exc.field is None:
                return Reply(exc.status, {"error": exc.message})
            return Reply(
                exc.status, {"error": f"{exc.field}: {exc.message}", "field": exc.field, "reason": exc.message}
            )
        except ValidationError as exc:
            return Reply(422, {"error": _validation_message(exc)})

    def _route(self, method: str, path: str, query: Mapping[str, list[str]], raw: bytes) -> Reply:
        if path in ("", "/") and method == "GET":
            return _ok(self.describe())
        if path == "/reset" and method == "POST":
            self.engine.reset()
            return _ok({"reset": True})
        if path == "/faults":
            return self._faults(method, raw)
        if path.startswith("/faults/") and method == "DELETE":
            fault_id = unquote(path.removeprefix("/faults/"))
            if not self.engine.faults.remove(fault_id):
                raise ControlError(404, f"no fault with id {fault_id!r}")
            return _ok({"deleted": 1})
        if path == "/tasks" and method == "GET":
            return self._list_tasks(query)
        if path.startswith("/tasks/"):
            return self._task(method, path.removeprefix("/tasks/"), raw)
        if path == "/stats" and method == "GET":
            return _ok({name: stats.model_dump() for name, stats in self.engine.stats().items()})
        if path == "/callbacks" and method == "GET":
            return _ok({"callbacks": [a.model_dump() for a in self.engine.callback_log()]})
        if path == "/config":
            return self._config(method, raw)
        raise ControlError(404, f"no control endpoint {method} {PREFIX}{path}")

    def _faults(self, method: str, raw: bytes) -> Reply:
        if method == "GET":
            return _ok({"faults": [entry.model_dump() for entry in self.engine.faults.entries()]})
        if method == "POST":
            fault = FAULT_ADAPTER.validate_python(_json_body(raw))
            return _ok({"id": self.engine.faults.add(fault)})
        if method == "DELETE":
            count = len(self.engine.faults.entries())
            self.engine.faults.clear()
            return _ok({"deleted": count})
        raise ControlError(405, f"{method} is not allowed on {PREFIX}/faults")

    def _list_tasks(self, query: Mapping[str, list[str]]) -> Reply:
        provider: ProviderName | None = None
        values = query.get("provider")
        if values:
            provider = next((name for name in PROVIDER_NAMES if name == values[0]), None)
            if provider is None:
                raise ControlError(400, f"unknown provider {values[0]!r}; known: {', '.join(PROVIDER_NAMES)}")
        tasks = self.engine.tasks(provider)
        return _ok({"tasks": [self.engine.view(task).model_dump() for task in tasks]})

    def _task(self, method: str, rest: str, raw: bytes) -> Reply:
        # AI/ML task ids contain "/" and ":", so the id is everything after /tasks/ (percent-decoded).
        if method == "POST" and rest.endswith("/finish"):
            task_id = unquote(rest.removesuffix("/finish"))
            request = FinishRequest.model_validate(_json_body(raw))
            outcome = Phase.SUCCEEDED if request.outcome == "success" else Phase.FAILED
            task = self.engine.finish(task_id, outcome, request.message)
            if task is None:
                raise ControlError(404, f"no task with id {task_id!r}")
            return _ok(self.engine.view(task).model_dump())
        if method == "GET":
            task_id = unquote(rest)
            found = self.engine.find(task_id)
            if found is None:
                raise ControlError(404, f"no task with id {task_id!r}")
            return _ok(self.engine.view(found).model_dump())
        raise ControlError(405, f"{method} is not allowed on {PREFIX}/tasks/<task_id>")

    def _config(self, method: str, raw: bytes) -> Reply:
        config = self.engine.config
        if method == "PUT":
            try:
                update = ConfigUpdate.model_validate(_json_body(raw))
            except ValidationError as exc:
                # Nothing is applied unless the whole update is valid.
                field, reason = _field_and_reason(exc)
                raise ControlError(400, reason, field) from exc
            if update.job_seconds is not None:
                config.job_seconds = update.job_seconds
            for provider, seconds in (update.provider_job_seconds or {}).items():
                if seconds is None:
                    config.provider_job_seconds.pop(provider, None)
                else:
                    config.provider_job_seconds[provider] = seconds
            if update.callback_backoff_scale is not None:
                config.callback_backoff_scale = update.callback_backoff_scale
            if update.variants is not None:
                config.variants = update.variants
            for provider, limit in (update.limits or {}).items():
                if limit is None:
                    config.limits.pop(provider, None)
                else:
                    config.limits[provider] = limit
        elif method != "GET":
            raise ControlError(405, f"{method} is not allowed on {PREFIX}/config")
        return _ok(
            {
                "job_seconds": config.job_seconds,
                "provider_job_seconds": dict(config.provider_job_seconds),
                "callback_backoff_scale": config.callback_backoff_scale,
                "variants": config.variants,
                "limits": {name: limit.model_dump() for name, limit in config.limits.items()},
                "kie_signing": config.kie_hmac_key is not None,
            }
        )
