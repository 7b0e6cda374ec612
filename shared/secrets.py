"""Secrets from Secrets Manager through Powertools parameters (cached for five minutes)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel, ConfigDict, ValidationError

from shared import aws
from shared.errors import ConfigurationError
from shared.models.common import ProviderName
from shared.signing import SigningKeys

CACHE_SECONDS = 300


class ProviderCredentials(BaseModel):
    """The provider-keys secret: a JSON object the operator fills. Unset providers are unusable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vidgo: str | None = None
    kie: str | None = None
    aimlapi: str | None = None
    pixwith: str | None = None
    apimart: str | None = None
    kie_webhook_hmac_key: str | None = None

    def key_for(self, provider: ProviderName) -> str | None:
        value: str | None = getattr(self, provider)
        return value or None


class SecretStore:
    def __init__(self, provider_secret_name: str, signing_secret_name: str, client: Any = None) -> None:
        self.provider_secret_name = provider_secret_name
        self.signing_secret_name = signing_secret_name
        self._client = client
        self._provider: SecretsProvider | None = None

    @property
    def _secrets(self) -> SecretsProvider:
        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client or aws.new_client("secretsmanager"))
        return self._provider

    def _read(self, name: str, what: str) -> str:
        if not name:
            raise ConfigurationError(f"no {what} secret is configured")
        try:
            value = self._secrets.get(name, max_age=CACHE_SECONDS)
        except GetParameterError as exc:
            raise ConfigurationError(f"the {what} secret cannot be read") from exc
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"the {what} secret is empty")
        return value

    def provider_credentials(self) -> ProviderCredentials:
        raw = self._read(self.provider_secret_name, "provider keys")
        try:
            return ProviderCredentials.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ConfigurationError("the provider keys secret is not a JSON object of provider keys") from exc

    def signing_keys(self) -> SigningKeys:
        return SigningKeys(self._read(self.signing_secret_name, "signing"))
