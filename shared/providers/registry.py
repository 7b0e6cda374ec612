"""The five adapters by name, and how to build one from settings and credentials."""

from __future__ import annotations

import httpx

from shared.models.common import PROVIDER_NAMES, ProviderName
from shared.providers.aimlapi import AimlapiProvider
from shared.providers.apimart import ApimartProvider
from shared.providers.base import Provider
from shared.providers.capabilities import Capabilities
from shared.providers.kie import KieProvider
from shared.providers.pixwith import PixwithProvider
from shared.providers.vidgo import VidgoProvider
from shared.secrets import ProviderCredentials
from shared.settings import Settings

PROVIDER_CLASSES: dict[ProviderName, type[Provider]] = {
    adapter.name: adapter for adapter in (VidgoProvider, KieProvider, AimlapiProvider, PixwithProvider, ApimartProvider)
}
assert tuple(PROVIDER_CLASSES) == PROVIDER_NAMES


def capabilities(name: ProviderName) -> Capabilities:
    return PROVIDER_CLASSES[name].capabilities


def build_provider(
    name: ProviderName, settings: Settings, credentials: ProviderCredentials, http: httpx.Client
) -> Provider | None:
    """The adapter for `name`, or None when no API key is configured for it."""
    return PROVIDER_CLASSES[name].from_settings(settings, credentials, http)
