"""Every provider and completion path with the emulator answering in every shape the providers' docs show
(`PUT /_control/config {"variants": true}`): each job ends as the provider meant, and no answer is left
unrecognised."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.models.common import PROVIDER_NAMES
from tests.e2e.conftest import E2E
from tests.e2e.test_completion_paths import check_archived, check_events

pytestmark = pytest.mark.e2e

FAIL = "[variant-fail]"
DROP = "[variant-drop]"
CALLBACK_PROVIDERS = ("vidgo", "kie")


@pytest.fixture
def varied(system: E2E) -> Iterator[E2E]:
    emulator = system.stack.emulator
    assert emulator is not None
    emulator.set_variants(True)
    try:
        yield system
    finally:
        emulator.set_variants(False)


def test_every_provider_and_completion_path_in_every_documented_shape(varied: E2E) -> None:
    emulator = varied.stack.emulator
    assert emulator is not None
    emulator.add_fault("generation_failed", match_prompt=FAIL, message="refused in review")
    for provider in CALLBACK_PROVIDERS:
        emulator.add_fault("callback_drop", provider=provider, match_prompt=DROP)
    for provider in ("aimlapi", "pixwith", "apimart"):  # one status error on each polled provider, in its shape
        emulator.add_fault("status_error", provider=provider, status=500, times=1)

    plan: list[tuple[dict[str, Any], str, str]] = []  # (request, expected status, expected completion)
    for provider in PROVIDER_NAMES:
        shapes = emulator.engine.apis[provider].variants
        completion = "callback" if provider in CALLBACK_PROVIDERS else "poll"
        plan += [
            ({"provider": provider, "prompt": f"{provider} ok {n}"}, "succeeded", completion) for n in range(shapes)
        ]
        plan += [
            ({"provider": provider, "prompt": f"{provider} {FAIL} {n}"}, "failed", completion) for n in range(shapes)
        ]
        if provider in CALLBACK_PROVIDERS:
            plan += [
                ({"provider": provider, "prompt": f"{provider} {DROP} {n}"}, "succeeded", "poll") for n in range(shapes)
            ]

    jobs = [varied.api.submit(request) for request, _, _ in plan]
    finished = varied.wait_all([job["id"] for job in jobs], timeout=120)

    for job, (request, status, completion) in zip(jobs, plan, strict=True):
        done = finished[job["id"]]
        label = (request["prompt"], emulator.task(done["provider_task_id"]).variant)
        assert (done["status"], done["completed_by"]) == (status, completion), (label, done.get("error"))
        assert done["provider_unrecognized"] is None, (label, done["provider_unrecognized"])
        if status == "succeeded":
            check_archived(varied, done)
        else:
            assert done["error"]["code"] == "generation_failed", label
        check_events(varied, done)
    for provider in PROVIDER_NAMES:
        shapes = emulator.engine.apis[provider].variants
        assert {task.variant for task in emulator.tasks(provider)} >= set(range(shapes)), provider
