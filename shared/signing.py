"""Keys derived from the one signing secret: per-job callback tokens and tenants' webhook secrets.

Nothing derived here is stored: a callback token is recomputed from the job id and the provider it
was handed to, a tenant's webhook secret from the tenant id and its secret version (bumped to rotate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.errors import ConfigurationError

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class SigningKeys:
    """Purpose-bound subkeys of the signing secret, so one purpose's output never serves another."""

    def __init__(self, signing_secret: str) -> None:
        if len(signing_secret) < 32:
            raise ConfigurationError("the signing secret is missing or shorter than 32 characters")
        master = signing_secret.encode()
        # v2 binds the token to the provider too; v1 tokens (job id only) no longer verify.
        self._callback_key = _hmac(master, "kling-relay/callback-token/v2")
        self._webhook_key = _hmac(master, "kling-relay/tenant-webhook-secret/v1")

    def callback_token(self, job_id: str, provider: str) -> str:
        """The token in the callback URL handed to `provider` for `job_id`; it verifies for that pair only."""
        # A NUL cannot occur in a job id or a provider name, so no two pairs share a message.
        message = f"{job_id}\x00{provider}"
        return base64.urlsafe_b64encode(_hmac(self._callback_key, message)).decode().rstrip("=")

    def callback_token_valid(self, job_id: str, provider: str, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.callback_token(job_id, provider).encode(), token.encode())

    def tenant_webhook_secret(self, tenant_id: str, version: int) -> str:
        """A Standard Webhooks secret (`whsec_` + base64 of 32 bytes) for the tenant's current version."""
        raw = _hmac(self._webhook_key, f"{tenant_id}:{version}")
        return WEBHOOK_SECRET_PREFIX + base64.b64encode(raw).decode()
