"""Callback tokens and tenant webhook secrets derived from the signing secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from standardwebhooks import Webhook

from shared.errors import ConfigurationError
from shared.signing import SigningKeys

SECRET = "s" * 64


def test_callback_tokens_verify_only_for_their_job_and_provider() -> None:
    keys = SigningKeys(SECRET)
    token = keys.callback_token("job_a", "kie")
    assert keys.callback_token_valid("job_a", "kie", token)
    assert not keys.callback_token_valid("job_b", "kie", token)
    assert not keys.callback_token_valid("job_a", "vidgo", token)
    assert not keys.callback_token_valid("job_a", "kie", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not keys.callback_token_valid("job_a", "kie", None)
    assert not keys.callback_token_valid("job_a", "kie", "")
    assert not SigningKeys("t" * 64).callback_token_valid("job_a", "kie", token)


def test_a_token_in_the_old_format_job_id_only_is_refused() -> None:
    master = SECRET.encode()
    old_key = hmac.new(master, b"kling-relay/callback-token/v1", hashlib.sha256).digest()
    old = base64.urlsafe_b64encode(hmac.new(old_key, b"job_a", hashlib.sha256).digest()).decode().rstrip("=")
    keys = SigningKeys(SECRET)
    assert not any(keys.callback_token_valid("job_a", provider, old) for provider in ("kie", "vidgo"))


def test_the_job_and_provider_cannot_be_shifted_into_each_other() -> None:
    keys = SigningKeys(SECRET)
    assert keys.callback_token("job_ak", "ie") != keys.callback_token("job_a", "kie")


@pytest.mark.parametrize("secret", ["", "short"])
def test_a_missing_or_weak_signing_secret_fails_closed(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        SigningKeys(secret)


def test_tenant_webhook_secrets_differ_by_tenant_and_version_and_load_in_standard_webhooks() -> None:
    keys = SigningKeys(SECRET)
    a1 = keys.tenant_webhook_secret("tenant-a", 1)
    assert a1.startswith("whsec_")
    assert len({a1, keys.tenant_webhook_secret("tenant-a", 2), keys.tenant_webhook_secret("tenant-b", 1)}) == 3
    assert a1 == SigningKeys(SECRET).tenant_webhook_secret("tenant-a", 1)
    Webhook(a1)  # the reference library accepts it


def test_callback_token_differs_from_webhook_secret_material() -> None:
    keys = SigningKeys(SECRET)
    assert keys.callback_token("tenant-a:1", "kie") not in keys.tenant_webhook_secret("tenant-a", 1)
