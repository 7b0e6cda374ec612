"""`client.providers`: the providers behind the API and what each can do."""

from __future__ import annotations

import httpx
from pydantic import BaseModel

from kling_relay import _http
from kling_relay._http import Call, ClientConfig
from kling_relay.jobs import parse
from kling_relay.models import Provider

CATALOG_CALL = Call("GET", "/providers")


class _Catalog(BaseModel):
    providers: list[Provider]


class Providers:
    def __init__(self, http: httpx.Client, config: ClientConfig) -> None:
        self._http = http
        self._config = config

    def list(self) -> list[Provider]:
        """Every provider, whether `auto` may route to it (in `routing_position` order), and its capabilities."""
        return parse(_Catalog, _http.send(self._http, self._config, CATALOG_CALL)).providers


class AsyncProviders:
    def __init__(self, http: httpx.AsyncClient, config: ClientConfig) -> None:
        self._http = http
        self._config = config

    async def list(self) -> list[Provider]:
        """As `KlingRelay.providers.list`."""
        return parse(_Catalog, await _http.asend(self._http, self._config, CATALOG_CALL)).providers
