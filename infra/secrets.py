"""Secrets Manager: the provider keys the operator fills in, and the generated key our signatures derive from."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

# Providers and the Kie webhook key the operator may set in the provider-keys secret (a JSON object).
PROVIDER_SECRET_KEYS = ("vidgo", "kie", "aimlapi", "pixwith", "apimart", "kie_webhook_hmac_key")
SIGNING_KEY_LENGTH = 64


class Secrets(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.provider_keys = secretsmanager.Secret(
            self,
            "ProviderKeys",
            description="Provider API keys as one JSON object: " + ", ".join(PROVIDER_SECRET_KEYS),
            # Created empty; the operator puts the keys in after the first deploy (README, "Provider keys").
            secret_object_value={},
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.provider_keys,
            "AwsSolutions-SMG4",
            "These are API keys issued by the video providers; only the provider can issue a new one, so "
            "Secrets Manager has nothing to rotate. The operator replaces them with put-secret-value.",
        )
        self.signing_key = secretsmanager.Secret(
            self,
            "SigningKey",
            description="Root key for callback tokens and tenants' webhook secrets (derived per purpose)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=SIGNING_KEY_LENGTH, exclude_punctuation=True, include_space=False
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.signing_key,
            "AwsSolutions-SMG4",
            "Tenants' webhook secrets and outstanding callback tokens are derived from this key, so an "
            "automatic rotation would silently invalidate every tenant's webhook verification and every "
            "in-flight job's callback URL. Rotation is a planned operator action instead.",
        )
