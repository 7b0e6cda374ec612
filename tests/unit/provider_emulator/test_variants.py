"""Answer variants: with `variants` on, each provider answers in every shape its docs show, rotating per
task, and the relay's own adapters read every one of them (success, failure, errors and callbacks)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from local.provider_emulator import ProviderEmulator
from local.provider_emulator.tasks import Phase
from shared.models.common import PROVIDER_NAMES
from shared.models.request import JobRequest
from shared.providers.base import ProviderState
from shared.providers.errors import ErrorKind, ProviderError
from shared.providers.registry import PROVIDER_CLASSES
from shared.settings import ProviderEndpoint
from tests.unit.provider_emulator.conftest import HMAC_KEY


def adapter(emulator: ProviderEmulator, provider: str) -> Any:
    cls = PROVIDER_CLASSES[provider]  # type: ignore[index]
    endpoint = ProviderEndpoint(base_url=emulator.provider_base_url(provider))
    options = {"webhook_hmac_key": HMAC_KEY} if provider == "kie" else {}
    return cls(endpoint, emulator.api_key(provider), httpx.Client(trust_env=False, timeout=10), **options)


def test_variants_are_off_until_switched_on_and_rotate_per_task(emulator: ProviderEmulator, control: Any) -> None:
    kie = adapter(emulator, "kie")
    first = kie.submit(JobRequest(prompt="off"), None).task_id
    assert control("PUT", "/config", {"variants": True}).json()["variants"] is True
    ids = [kie.submit(JobRequest(prompt=f"on {n}"), None).task_id for n in range(4)]
    assert emulator.task(first).variant == 0
    assert [emulator.task(task_id).variant for task_id in ids] == [0, 1, 2, 0]


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize("outcome", ["success", "fail"])
def test_the_relay_reads_every_documented_shape(emulator: ProviderEmulator, provider: str, outcome: str) -> None:
    emulator.set_variants(True)
    relay = adapter(emulator, provider)
    shapes = emulator.engine.apis[provider].variants  # type: ignore[index]
    for _ in range(shapes):
        task_id = relay.submit(JobRequest(prompt=f"{provider} {outcome}"), None).task_id
        emulator.finish(task_id, outcome, "refused by review" if outcome == "fail" else None)
        status = relay.status(task_id)
        assert status.unrecognized is None, (emulator.task(task_id).variant, status)
        if outcome == "success":
            assert status.state is ProviderState.SUCCEEDED
            assert status.result_urls == tuple(emulator.task(task_id).result_urls)
        else:
            assert status.state is ProviderState.FAILED
            # Pixwith documents no failure reason; the others carry the provider's.
            assert status.error_message == (None if provider == "pixwith" else "refused by review")
    assert sorted({task.variant for task in emulator.tasks(provider)}) == list(range(shapes))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_errors_in_every_shape_keep_their_meaning(emulator: ProviderEmulator, provider: str) -> None:
    emulator.set_variants(True)
    relay = adapter(emulator, provider)
    for _ in range(emulator.engine.apis[provider].variants):  # type: ignore[index]
        emulator.add_fault("submit_error", provider=provider, status=429, times=1)
        with pytest.raises(ProviderError) as caught:
            relay.submit(JobRequest(prompt="p"), None)
        assert caught.value.kind is ErrorKind.RETRYABLE
        assert not caught.value.unrecognized


def test_kie_callbacks_carry_the_task_id_wherever_a_shape_puts_it(emulator: ProviderEmulator) -> None:
    emulator.set_variants(True)
    relay = adapter(emulator, "kie")
    for _ in range(3):
        task = emulator.engine.find(relay.submit(JobRequest(prompt="cb"), None).task_id)
        assert task is not None
        emulator.finish(task.task_id, "success")
        snapshot = emulator.engine.snapshot(task)
        api = emulator.engine.apis["kie"]
        body = api.vary(api.callback_body(snapshot), task.variant)
        status = relay.parse_callback(json.dumps(body).encode(), {})
        assert (status.task_id, status.state) == (task.task_id, ProviderState.SUCCEEDED)
    assert {t.variant for t in emulator.tasks("kie")} == {0, 1, 2}
    assert all(t.state is Phase.SUCCEEDED for t in emulator.tasks("kie"))
