"""What each provider can do, for `GET /v1/providers` and `kling-relay providers`."""

from __future__ import annotations

from pydantic import BaseModel

from shared.models.common import PROVIDER_NAMES
from shared.providers.capabilities import Capabilities
from shared.providers.registry import capabilities
from shared.settings import Settings


class ProviderEntry(BaseModel):
    name: str
    enabled: bool
    routing_position: int | None
    capabilities: Capabilities


class ProviderCatalog(BaseModel):
    providers: list[ProviderEntry]


def provider_catalog(settings: Settings) -> ProviderCatalog:
    order = settings.routing_order()
    return ProviderCatalog(
        providers=[
            ProviderEntry(
                name=name,
                enabled=name in order,
                routing_position=order.index(name) + 1 if name in order else None,
                capabilities=capabilities(name),
            )
            for name in PROVIDER_NAMES
        ]
    )
