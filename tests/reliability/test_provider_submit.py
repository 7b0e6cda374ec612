"""Providers refusing or hanging on submit: `auto` fails over and keeps every attempt; a named provider
gives a clear 502 or 503; a timed-out submit that the provider did take leaves a task whose callbacks
cannot touch the job."""

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
        retry_after = 30 if status == 429 else None
        system.emulator.add_fault(
            "submit_error", provider="vidgo", match_prompt=prompt, status=status, retry_after=retry_after
        )
        requests.append({"prompt": prompt})
    two_down = f"{tag} vidgo 429 then kie 500"
    system.emulator.add_fault("submit_error", provider="vidgo", match_prompt=two_down, status=429, retry_after=5)
    system.emulator.add_fault("submit_error", provider="kie", match_prompt=two_down, status=500)
    requests.append({"prompt": two_down})

    jobs = system.submit_all(requests)
    for job, status in zip(jobs, FAILOVER_STATUSES, strict=False):
        assert job["provider"] == "kie", job
        outcome = "unavailable"
        assert attempts(system, job["id"]) == [("vidgo", outcome, status), ("kie", "accepted", None)]
        assert not tasks_with_prompt(system, "vidgo", job["request"]["prompt"])
    throttled = system.record(jobs[0]["id"]).attempts[0]
    assert throttled.retry_after_seconds == 30
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


def test_when_no_provider_can_take_the_job_the_answer_is_503_and_a_retry_with_the_same_key_works(
    system: Rig,
) -> None:
    prompt = tagged("everyone is down")
    for provider, retry_after in (("vidgo", 120), ("kie", 40), ("aimlapi", None), ("pixwith", 90), ("apimart", None)):
        # Pixwith answers every error inside HTTP 200; "Credits not enough" is its unavailable answer.
        status = 402 if provider == "pixwith" else 503
        system.emulator.add_fault(
            "submit_error", provider=provider, match_prompt=prompt, status=status, retry_after=retry_after, times=1
        )
    refused = system.post_job({"prompt": prompt}, idempotency_key="order-down-1")
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "provider_unavailable"
    assert refused.headers["Retry-After"] == "40"  # the soonest any provider said
    failed_id = error["details"]["job_id"]
    assert [a["provider"] for a in error["details"]["attempts"]] == ["vidgo", "kie", "aimlapi", "pixwith", "apimart"]
    assert {a["outcome"] for a in error["details"]["attempts"]} == {"unavailable"}

    # Nothing reached a provider, so the key was released: the same request and key now gets a new job.
    retried = system.post_job({"prompt": prompt}, idempotency_key="order-down-1")
    assert retried.status_code == 202, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    new_id = retried.json()["id"]
    assert new_id != failed_id
    system.wait_terminal([new_id])
    system.check(
        {
            failed_id: Expect("failed", error="provider_unavailable", provider_task=False),
            new_id: Expect("succeeded", provider="vidgo", completed_by="callback"),
        }
    )


NAMED_REFUSALS = [
    # provider, provider's status, our status, our code, the job's error code
    ("vidgo", 429, 503, "provider_unavailable", "provider_unavailable"),
    ("kie", 455, 503, "provider_unavailable", "provider_unavailable"),
    ("aimlapi", 500, 503, "provider_unavailable", "provider_unavailable"),
    ("pixwith", 402, 503, "provider_unavailable", "provider_unavailable"),
    ("apimart", 402, 503, "provider_unavailable", "provider_unavailable"),
    ("kie", 422, 502, "provider_rejected", "provider_rejected"),
    ("apimart", 400, 502, "provider_rejected", "provider_rejected"),
]


def test_a_named_provider_that_refuses_gives_a_clear_502_or_503(system: Rig) -> None:
    tag = tagged("named refusal")
    expected: dict[str, Expect] = {}
    for provider, status, answer, code, job_error in NAMED_REFUSALS:
        prompt = f"{tag} {provider} {status}"
        retry_after = 15 if status == 429 else None
        system.emulator.add_fault(
            "submit_error", provider=provider, match_prompt=prompt, status=status, retry_after=retry_after
        )
        response = system.post_job({"provider": provider, "prompt": prompt})
        assert response.status_code == answer, (provider, status, response.text)
        error = response.json()["error"]
        assert error["code"] == code, error
        assert error["details"]["job_id"].startswith("job_"), error
        [attempt] = error["details"]["attempts"]
        answered = 200 if provider == "pixwith" else status  # Pixwith's errors come inside HTTP 200
        assert (attempt["provider"], attempt["http_status"]) == (provider, answered), attempt
        assert attempt["outcome"] == ("unavailable" if answer == 503 else "rejected"), attempt
        if retry_after:
            assert response.headers["Retry-After"] == "15"
        assert not tasks_with_prompt(system, provider, prompt)
        expected[error["details"]["job_id"]] = Expect("failed", error=job_error, provider=provider, provider_task=False)
    system.check(expected)


def test_a_submit_timeout_fails_over_and_the_orphan_tasks_callback_cannot_touch_the_job(system: Rig) -> None:
    """Vidgo answers after our read timeout but creates the task anyway: the job goes to Kie with the Vidgo
    attempt recorded as interrupted; when Vidgo's orphan task calls back to the job, it is refused."""
    tag = tagged("slow submit")
    system.emulator.add_fault("latency", provider="vidgo", match_prompt=tag, on="submit", seconds=2.5)
    named = f"{tag} named"
    system.emulator.add_fault("latency", provider="aimlapi", match_prompt=named, on="submit", seconds=2.5)
    with system.settings_for("api", provider_read_timeout=1.0):
        job = system.api.submit({"prompt": tag})
        refused = system.post_job({"provider": "aimlapi", "prompt": named})
    assert job["provider"] == "kie"
    assert attempts(system, job["id"]) == [("vidgo", "interrupted", None), ("kie", "accepted", None)]
    assert refused.status_code == 503, refused.text
    refused_id = refused.json()["error"]["details"]["job_id"]

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
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert [a["outcome"] for a in error["details"]["attempts"]] == ["unavailable"], error
        expected[error["details"]["job_id"]] = Expect("failed", error="provider_unavailable", provider_task=False)
        # Nothing was created at Pixwith, so the key must be free for a retry.
        system.emulator.clear_faults()
        retried = system.post_job({"provider": "pixwith", "prompt": prompt}, idempotency_key=prompt)
        assert retried.status_code == 202, retried.text
        expected[retried.json()["id"]] = Expect("succeeded", provider="pixwith")
    system.wait_terminal(list(expected))
    system.check(expected)
