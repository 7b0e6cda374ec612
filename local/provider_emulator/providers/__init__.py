"""The five emulated provider APIs, by provider name."""

from __future__ import annotations

from local.provider_emulator.providers.aimlapi import AimlApi
from local.provider_emulator.providers.apimart import ApimartApi
from local.provider_emulator.providers.base import ProviderApi
from local.provider_emulator.providers.kie import KieApi
from local.provider_emulator.providers.pixwith import PixwithApi
from local.provider_emulator.providers.vidgo import VidgoApi
from shared.models.common import ProviderName


def provider_apis() -> dict[ProviderName, ProviderApi]:
    apis: list[ProviderApi] = [VidgoApi(), KieApi(), AimlApi(), PixwithApi(), ApimartApi()]
    return {api.name: api for api in apis}
