"""`ProviderEmulator`: start, stop and address the emulated providers; in-process control helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal

from local.provider_emulator.control import ControlApi
from local.provider_emulator.engine import EmulatorConfig, Engine, ProviderStats
from local.provider_emulator.faults import FAULT_ADAPTER
from local.provider_emulator.limits import LimitsInput, ProviderLimit, parse_limits
from local.provider_emulator.media import ASSET_NAMES
from local.provider_emulator.providers import provider_apis
from local.provider_emulator.server import EmulatorHTTPServer
from local.provider_emulator.tasks import CallbackAttempt, Phase, TaskView
from shared.models.common import PROVIDER_NAMES, ProviderName


def _default_key(provider: ProviderName) -> str:
    return f"emulator-{provider}-key"


class ProviderEmulator:
    """The five provider APIs on one local HTTP server, each mounted under `/<provider>`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        job_seconds: float = 2.0,
        kie_hmac_key: str | None = None,
        api_keys: Mapping[str, str] | None = None,
        *,
        provider_job_seconds: Mapping[str, float] | None = None,
        callback_backoff_scale: float = 1.0,
        limits: LimitsInput | None = None,
        limit_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if job_seconds < 0:
            raise ValueError(f"job_seconds must be >= 0; got {job_seconds}")
        if kie_hmac_key == "":
            raise ValueError("kie_hmac_key must be a non-empty string or None (no signing)")
        self.host = host
        self.port = port
        keys: dict[ProviderName, str] = {name: _default_key(name) for name in PROVIDER_NAMES}
        keys.update({_provider(name, "api_keys"): _key(name, key) for name, key in (api_keys or {}).items()})
        per_provider = {
            _provider(name, "provider_job_seconds"): float(seconds)
            for name, seconds in (provider_job_seconds or {}).items()
        }
        config = EmulatorConfig(
            job_seconds=job_seconds,
            api_keys=keys,
            kie_hmac_key=kie_hmac_key,
            provider_job_seconds=per_provider,
            callback_backoff_scale=callback_backoff_scale,
            limits=parse_limits(limits or {}),
        )
        self.engine = Engine(config, provider_apis(), limit_clock)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        """Bind, serve on a background thread, and return the base URL (`http://host:port`)."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        if self._stopped:
            raise RuntimeError("a stopped emulator cannot be started again; create a new ProviderEmulator")
        server = EmulatorHTTPServer((self.host, self.port), self.engine, ControlApi(self.engine, self.describe))
        bound_host, bound_port = server.server_address[:2]
        host = str(bound_host)
        self._base_url = f"http://[{host}]:{bound_port}" if ":" in host else f"http://{host}:{bound_port}"
        self.engine.start(self._base_url)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="emulator-http", daemon=True
        )
        self._thread.start()
        return self._base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self.engine.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        self._stopped = True

    def __enter__(self) -> ProviderEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the emulator is not started; call start() first")
        return self._base_url

    def provider_base_url(self, provider: str) -> str:
        return f"{self.base_url}/{_provider(provider, 'provider')}"

    def api_key(self, provider: str) -> str:
        return self.engine.config.api_keys[_provider(provider, "provider")]

    def asset_url(self, name: str) -> str:
        if name not in ASSET_NAMES:
            raise ValueError(f"no sample asset named {name!r}; known: {', '.join(ASSET_NAMES)}")
        return f"{self.base_url}/assets/{name}"

    def control_url(self) -> str:
        return f"{self.base_url}/_control"

    def describe(self) -> dict[str, Any]:
        apis = self.engine.apis
        return {
            "base_url": self.base_url,
            "control_url": self.control_url(),
            "providers": {
                name: {
                    "base_url": self.provider_base_url(name),
                    "api_key": self.api_key(name),
                    "callbacks": apis[name].callbacks is not None,
                }
                for name in PROVIDER_NAMES
            },
            "assets": {name: self.asset_url(name) for name in ASSET_NAMES},
            "kie_signing": self.engine.config.kie_hmac_key is not None,
        }

    # -- in-process control (the same operations as the /_control API) ---------------------------

    def reset(self) -> None:
        self.engine.reset()

    def add_fault(self, kind: str, **params: Any) -> str:
        return self.engine.faults.add(FAULT_ADAPTER.validate_python({"kind": kind, **params}))

    def clear_faults(self) -> None:
        self.engine.faults.clear()

    def task(self, task_id: str) -> TaskView | None:
        task = self.engine.find(task_id)
        return None if task is None else self.engine.view(task)

    def tasks(self, provider: str | None = None) -> list[TaskView]:
        wanted = None if provider is None else _provider(provider, "provider")
        return [self.engine.view(task) for task in self.engine.tasks(wanted)]

    def finish(self, task_id: str, outcome: Literal["success", "fail"], message: str | None = None) -> TaskView:
        task = self.engine.finish(task_id, Phase.SUCCEEDED if outcome == "success" else Phase.FAILED, message)
        if task is None:
            raise KeyError(f"no task with id {task_id!r}")
        return self.engine.view(task)

    def stats(self) -> dict[ProviderName, ProviderStats]:
        return self.engine.stats()

    def callbacks(self) -> list[CallbackAttempt]:
        return self.engine.callback_log()

    def set_variants(self, on: bool) -> None:
        """Answer in every shape each provider's docs show, rotating per task, or only in the first."""
        self.engine.config.variants = on

    def set_limit(self, provider: str, limit: ProviderLimit | Mapping[str, object] | None) -> None:
        """Set (or with None remove) a provider's submit limits, as `PUT /_control/config` `limits` does."""
        name = _provider(provider, "provider")
        parsed = parse_limits({name: limit})
        if name in parsed:
            self.engine.config.limits[name] = parsed[name]
        else:
            self.engine.config.limits.pop(name, None)

    def limits(self) -> dict[ProviderName, ProviderLimit]:
        return dict(self.engine.config.limits)

    def set_job_seconds(self, seconds: float, provider: str | None = None) -> None:
        """Job time for tasks submitted from now on, for all providers or one."""
        if seconds < 0:
            raise ValueError(f"job seconds must be >= 0; got {seconds}")
        if provider is None:
            self.engine.config.job_seconds = seconds
        else:
            self.engine.config.provider_job_seconds[_provider(provider, "provider")] = seconds


def _provider(name: str, where: str) -> ProviderName:
    for known in PROVIDER_NAMES:
        if name == known:
            return known
    raise ValueError(f"{where}: unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}")


def _key(provider: str, key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"api_keys[{provider!r}] must be a non-empty string")
    return key
