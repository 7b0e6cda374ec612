"""The five emulated provider APIs, by provider name."""

from __future__ import annotations

from local.emulator.providers.aimlapi import AimlApi
from local.emulator.providers.apimart import ApimartApi
from local.emulator.providers.base import ProviderApi
from local.emulator.providers.kie import KieApi
from local.emulator.providers.pixwith import PixwithApi
from local.emulator.providers.vidgo import VidgoApi
from shared.models.common import ProviderName


def provider_apis() -> dict[ProviderName, ProviderApi]:
    apis: list[ProviderApi] = [VidgoApi(), KieApi(), AimlApi(), PixwithApi(), ApimartApi()]
    return {api.name: api for api in apis}
