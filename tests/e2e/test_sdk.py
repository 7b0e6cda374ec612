"""The SDK against the local stack, as an app uses it: submit, wait, download, list, cancel, errors, webhooks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from kling_relay import (
    AsyncKlingRelay,
    AuthenticationError,
    IdempotencyConflictError,
    Job,
    JobTerminalError,
    KlingRelay,
    NotFoundError,
    UnsupportedRequestError,
    Usage,
    webhooks,
)

from tests.e2e.conftest import E2E
from tests.support.http_server import Reply, serve

pytestmark = pytest.mark.e2e


def relay_for(system: E2E, api_key: str | None = None) -> KlingRelay:
    return KlingRelay(system.stack.base_url, api_key or system.key.api_key)


def test_submit_wait_and_download_a_checked_video(system: E2E, tmp_path: Path) -> None:
    seen: list[Job] = []
    with relay_for(system) as relay:
        job = relay.jobs.create(prompt="sdk: a fox in the snow", provider="kie", sound=True, metadata={"order": "7"})
        assert job.status in {"submitting", "queued"}
        assert job.request.sound is True
        final = relay.jobs.wait(job, timeout=60, poll_interval=0.3, on_progress=seen.append)
        assert final.status == "succeeded", f"{final.to_dict()}\n{system.diagnostics()}"
        assert seen[-1] == final
        assert final.metadata == {"order": "7"}
        saved = relay.jobs.download(final, tmp_path)
    assert saved == tmp_path / f"{job.id}.mp4"
    assert [saved.read_bytes()] == system.served_bytes(final.to_dict())
    assert saved.stat().st_size == final.outputs[0].bytes


def test_list_walks_every_page_newest_first_and_filters(system: E2E) -> None:
    key = system.stack.create_api_key("e2e-sdk-list")
    with relay_for(system, key.api_key) as relay:
        made = [relay.jobs.create(prompt=f"sdk list {i}", provider=p) for i, p in enumerate(["vidgo", "kie"] * 3)]
        listed = list(relay.jobs.list(page_size=2))
        assert [job.id for job in listed] == [job.id for job in reversed(made)]
        assert len(list(relay.jobs.list(page_size=2).pages())) == 3
        assert {job.id for job in relay.jobs.list(provider="kie")} == {job.id for job in made if job.provider == "kie"}
        page = relay.jobs.list_page(limit=4)
        assert len(page.items) == 4
        assert page.next_cursor is not None
        for job in made:  # none left running into the next test
            assert relay.jobs.wait(job, timeout=60, poll_interval=0.3).status == "succeeded"


def test_cancel_and_the_typed_errors_an_app_meets(system: E2E) -> None:
    assert system.stack.emulator is not None
    system.stack.emulator.set_job_seconds(30, provider="pixwith")
    other = system.stack.create_api_key("e2e-sdk-other")
    try:
        with relay_for(system) as relay:
            job = relay.jobs.create(prompt="sdk cancel me", provider="pixwith")
            assert relay.jobs.cancel(job.id).status == "canceled"
            with pytest.raises(JobTerminalError) as finished:
                relay.jobs.cancel(job.id)
            assert finished.value.details == {"status": "canceled"}

            with pytest.raises(UnsupportedRequestError) as unsupported:
                relay.jobs.create(prompt="sdk", provider="vidgo", duration=10, negative_prompt="people")
            assert unsupported.value.status_code == 422
            assert any(item["field"] == "negative_prompt" for item in unsupported.value.details)

            first = relay.jobs.create(prompt="sdk once", provider="apimart", idempotency_key="sdk-order-1")
            again = relay.jobs.create(prompt="sdk once", provider="apimart", idempotency_key="sdk-order-1")
            assert again.id == first.id
            with pytest.raises(IdempotencyConflictError) as conflict:
                relay.jobs.create(prompt="sdk twice", provider="apimart", idempotency_key="sdk-order-1")
            assert conflict.value.details == {"job_id": first.id}

        with relay_for(system, other.api_key) as stranger, pytest.raises(NotFoundError):
            stranger.jobs.get(first.id)
        with relay_for(system, "kr_not_a_key") as nobody, pytest.raises(AuthenticationError):
            nobody.jobs.get(first.id)
    finally:
        system.stack.emulator.set_job_seconds(2.0, provider="pixwith")


def test_providers_and_usage_as_this_deployment_serves_them(system: E2E) -> None:
    with relay_for(system) as relay:
        providers = relay.providers.list()
        assert {p.name for p in providers} == {"vidgo", "kie", "aimlapi", "pixwith", "apimart"}
        assert all(p.capabilities.provider == p.name for p in providers)
        document = httpx.get(f"{system.stack.base_url}/openapi.json", timeout=10).json()
        assert "/usage" in document["paths"]
        usage = relay.usage()
        assert isinstance(usage, Usage)
        assert usage.limits is not None
        assert usage.limits["tier"] == "pro"
        assert isinstance(usage.active_jobs, int)
        assert usage.model_extra is not None
        assert usage.model_extra["tenant_id"] == system.key.tenant
        assert usage.model_extra["requests"]["used"] >= 1  # this very request, counted by the usage plan


def test_webhook_deliveries_verify_into_typed_events(system: E2E) -> None:
    with serve(lambda _: Reply(204)) as receiver, relay_for(system) as relay:
        job = relay.jobs.create(prompt="sdk webhook", provider="kie", webhook_url=f"{receiver.url}/hooks")
        relay.jobs.wait(job, timeout=60, poll_interval=0.3)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(receiver.received) < 3:
            time.sleep(0.2)
    events = [
        webhooks.verify(request.body, request.headers, system.key.webhook_secret) for request in receiver.received
    ]
    types = [event.type for event in events]
    assert types[-1] == "job.succeeded"
    assert {"job.queued", "job.archiving"} <= set(types)
    assert all(event.data.id == job.id for event in events)
    assert events[-1].data.outputs[0].sha256 == relay_for(system).jobs.get(job.id).outputs[0].sha256
    forged = {**receiver.received[-1].headers, "webhook-id": "evt_" + "0" * 32}
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify(receiver.received[-1].body, forged, system.key.webhook_secret)


def test_the_async_client_end_to_end(system: E2E, tmp_path: Path) -> None:
    async def scenario() -> tuple[Job, Path, list[str]]:
        async with AsyncKlingRelay(system.stack.base_url, system.key.api_key) as relay:
            jobs = await asyncio.gather(
                *(relay.jobs.create(prompt=f"sdk async {p}", provider=p) for p in ("aimlapi", "vidgo"))
            )
            finals = await asyncio.gather(*(relay.jobs.wait(job, timeout=60, poll_interval=0.3) for job in jobs))
            saved = await relay.jobs.download(finals[0], tmp_path / "async.mp4")
            listed = [job.id async for job in relay.jobs.list(page_size=1)]
            return finals[0], saved, listed

    final, saved, listed = asyncio.run(scenario())
    assert final.status == "succeeded"
    assert saved.read_bytes() == system.served_bytes(final.to_dict())[0]
    assert final.id in listed
