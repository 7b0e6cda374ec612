"""Providers refusing or hanging when a job is handed to them: `auto` fails over and keeps every attempt; a
provider refusing the request fails the job `provider_rejected` (the POST was already answered 202); a
timed-out submit that the provider did take leaves a task whose callbacks cannot touch the job.
A 429 with Retry-After pauses the provider for every job: tests/reliability/test_dispatch.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAILOVER_STATUSES = [429, 455, 500, 502, 503, 401, 402]


def attempts(rig: Rig, job_id: str) -> list[tuple[str, str, int | None]]:
    return [(a.provider, a.outcome.value, a.http_status) for a in rig.record(job_id).attempts]


def tasks_with_prompt(rig: Rig, provider: str, prompt: str) -> list[Any]:
    return [task for task in rig.emulator.tasks(provider) if task.prompt == prompt]


def test_auto_routing_fails_over_on_every_retryable_refusal(system: Rig) -> None:
    tag = tagged("failover")
    requests = []
    for status in FAILOVER_STATUSES:
        prompt = f"{tag} vidgo answers {status}"
        system.emulator.add_fault("submit_error", provider="vidgo", match_prompt=prompt, status=status)
        requests.append({"prompt": prompt})
    two_down = f"{tag} vidgo 429 then kie 500"
    system.emulator.add_fault("submit_error", provider="vidgo", match_prompt=two_down, status=429)
    system.emulator.add_fault("submit_error", provider="kie", match_prompt=two_down, status=500)
    requests.append({"prompt": two_down})

    jobs = system.submit_all(requests)
    for job, status in zip(jobs, FAILOVER_STATUSES, strict=False):
        assert job["provider"] == "kie", job
        outcome = "unavailable"
        assert attempts(system, job["id"]) == [("vidgo", outcome, status), ("kie", "accepted", None)]
        assert not tasks_with_prompt(system, "vidgo", job["request"]["prompt"])
    assert jobs[-1]["provider"] == "aimlapi"
    assert attempts(system, jobs[-1]["id"]) == [
        ("vidgo", "unavailable", 429),
        ("kie", "unavailable", 500),
        ("aimlapi", "accepted", None),
    ]
    system.wait_terminal([job["id"] for job in jobs])
    expected = {job["id"]: Expect("succeeded", provider="kie", provider_task=True) for job in jobs[:-1]}
    expected[jobs[-1]["id"]] = Expect("succeeded", provider="aimlapi", completed_by="poll")
    system.check(expected)


def test_when_no_provider_can_take_the_job_it_waits_and_a_later_round_hands_it_over(system: Rig) -> None:
    prompt = tagged("everyone is down")
    for provider, retry_after in (("vidgo", 120), ("kie", 40), ("aimlapi", None), ("pixwith", 90), ("apimart", None)):
        # Pixwith answers every error inside HTTP 200; "Credits not enough" is its unavailable answer.
        status = 402 if provider == "pixwith" else 503
        system.emulator.add_fault(
            "submit_error", provider=provider, match_prompt=prompt, status=status, retry_after=retry_after, times=1
        )
    admitted = system.post_job({"prompt": prompt}, idempotency_key="order-down-1")
    assert admitted.status_code == 202, admitted.text
    assert admitted.json()["status"] == "submitting"
    job_id = admitted.json()["id"]

    done = system.wait_terminal([job_id])[job_id]
    outcomes = [(a.provider, a.outcome.value) for a in done.attempts]
    assert outcomes == [(p, "unavailable") for p in ("vidgo", "kie", "aimlapi", "pixwith", "apimart")] + [
        ("vidgo", "accepted")
    ]
    # The same key is the same job throughout: the app never had to retry.
    replay = system.post_job({"prompt": prompt}, idempotency_key="order-down-1")
    assert (replay.status_code, replay.json()["id"]) == (202, job_id)
    system.check({job_id: Expect("succeeded", provider="vidgo", completed_by="callback")})


UNAVAILABLE_NAMED = [("vidgo", 429), ("kie", 455), ("aimlapi", 500), ("pixwith", 402), ("apimart", 402)]
REJECTED_NAMED = [("kie", 422), ("apimart", 400)]


def test_a_named_provider_refusing_the_request_fails_the_job_and_one_that_is_down_keeps_it_waiting(
    system: Rig,
) -> None:
    tag = tagged("named refusal")
    answers: dict[str, tuple[str, int, str]] = {}
    for provider, status in UNAVAILABLE_NAMED + REJECTED_NAMED:
        prompt = f"{tag} {provider} {status}"
        system.emulator.add_fault("submit_error", provider=provider, match_prompt=prompt, status=status)
        response = system.post_job({"provider": provider, "prompt": prompt})
        assert response.status_code == 202, (provider, status, response.text)
        answers[response.json()["id"]] = (provider, status, prompt)

    expected: dict[str, Expect] = {}
    for job_id, (provider, status, prompt) in answers.items():
        answered = 200 if provider == "pixwith" else status  # Pixwith's errors come inside HTTP 200
        if (provider, status) in REJECTED_NAMED:
            record = system.wait_terminal([job_id])[job_id]
            [attempt] = record.attempts
            assert (attempt.provider, attempt.http_status, attempt.outcome.value) == (provider, answered, "rejected")
            expected[job_id] = Expect("failed", error="provider_rejected", provider=provider, provider_task=False)
        else:
            record = system.wait_for(lambda j=job_id: (r := system.record(j)).waiting and r, 20, f"{job_id} waiting")
            assert record.status.value == "submitting"
            assert record.waiting is not None
            assert record.waiting.provider == provider
            assert {(a.provider, a.http_status, a.outcome.value) for a in record.attempts} == {
                (provider, answered, "unavailable")
            }
            system.api.cancel(job_id)  # the app gives up on it: nothing is sent afterwards (test_dispatch.py)
            expected[job_id] = Expect("canceled", error="canceled", provider=provider, provider_task=False)
        assert not tasks_with_prompt(system, provider, prompt)
    system.check(expected)


def test_a_submit_timeout_fails_over_and_the_orphan_tasks_callback_cannot_touch_the_job(system: Rig) -> None:
    """Vidgo answers after our read timeout but creates the task anyway: the job goes to Kie with the Vidgo
    attempt recorded as interrupted; when Vidgo's orphan task calls back to the job, it is refused."""
    tag = tagged("slow submit")
    system.emulator.add_fault("latency", provider="vidgo", match_prompt=tag, on="submit", seconds=2.5)
    named = f"{tag} named"
    system.emulator.add_fault("latency", provider="aimlapi", match_prompt=named, on="submit", seconds=2.5)
    with system.settings_for("dispatch", provider_read_timeout=1.0):
        [job] = system.submit_all([{"prompt": tag}])
        refused = system.post_job({"provider": "aimlapi", "prompt": named})
        assert refused.status_code == 202, refused.text
        refused_id = refused.json()["id"]
        system.wait_terminal([refused_id])
    assert job["provider"] == "kie"
    assert attempts(system, job["id"]) == [("vidgo", "interrupted", None), ("kie", "accepted", None)]

    orphan = system.wait_for(lambda: tasks_with_prompt(system, "vidgo", tag), 15, "vidgo's orphan task")[0]
    assert f"/callbacks/vidgo/{job['id']}?" in (orphan.callback_url or "")
    answered = system.wait_for(
        lambda: [a for a in (system.emulator.task(orphan.task_id) or orphan).callback_attempts if a.status_code],
        20,
        "the orphan task's callback answered",
    )
    assert answered[0].status_code == 401
    assert answered[0].label == "genuine"
    system.wait_for(lambda: tasks_with_prompt(system, "aimlapi", named), 15, "aimlapi's orphan task")
    system.wait_terminal([job["id"]])
    system.check(
        {
            job["id"]: Expect("succeeded", provider="kie", completed_by="callback"),
            refused_id: Expect("failed", error="submit_interrupted", provider="aimlapi", provider_task=False),
        }
    )


def test_pixwith_refusing_inside_http_200_is_an_unavailable_provider_not_an_interrupted_submit(system: Rig) -> None:
    tag = tagged("pixwith refuses")
    expected: dict[str, Expect] = {}
    for status in (429, 455, 500):
        prompt = f"{tag} {status}"
        system.emulator.add_fault("submit_error", provider="pixwith", match_prompt=prompt, status=status)
        response = system.post_job({"provider": "pixwith", "prompt": prompt}, idempotency_key=prompt)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        waiting = system.wait_for(lambda j=job_id: (r := system.record(j)).waiting and r, 20, f"{job_id} waiting")
        assert [a.outcome.value for a in waiting.attempts] == ["unavailable"]
        # Nothing was created at Pixwith: once it takes work again, a later round hands the same job over.
        system.emulator.clear_faults()
        expected[job_id] = Expect("succeeded", provider="pixwith")
    done = system.wait_terminal(list(expected))
    for record in done.values():
        assert [a.outcome.value for a in record.attempts] == ["unavailable", "accepted"]
    system.check(expected)
