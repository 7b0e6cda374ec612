"""Provider callbacks under faults and attack: duplicated, reordered, late, dropped, forged, replayed,
misaddressed and oversized. Every job ends right, archives once and publishes one event per change;
no refused callback changes a stored job by a single byte."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from local.provider_emulator.tasks import CallbackAttempt
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect, item_unchanged

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLBACK_PROVIDERS = ("vidgo", "kie")


def deliveries(rig: Rig, task_id: str, label_prefix: str) -> list[CallbackAttempt]:
    task = rig.emulator.task(task_id)
    assert task is not None
    return [a for a in task.callback_attempts if a.label.startswith(label_prefix)]


def answered(rig: Rig, task_id: str | None, label_prefix: str, timeout: float = 20) -> list[CallbackAttempt]:
    """The task's deliveries of that kind that got an answer, once there is one."""

    def probe() -> list[CallbackAttempt]:
        return [a for a in deliveries(rig, task_id or "", label_prefix) if a.status_code]

    found: list[CallbackAttempt] = rig.wait_for(probe, timeout, f"a {label_prefix} callback for {task_id} answered")
    return found


def test_duplicated_callbacks_x5_archive_once(system: Rig) -> None:
    tag = tagged("duplicated callbacks")
    system.emulator.add_fault("callback_duplicate", match_prompt=tag, count=5)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in CALLBACK_PROVIDERS])
    finished = system.wait_terminal([job["id"] for job in jobs])
    system.wait_for(
        lambda: all(
            len([a for a in deliveries(system, job.provider_task_id or "", "duplicate") if a.delivered]) == 5
            for job in finished.values()
        ),
        15,
        "five duplicate callbacks delivered per task",
    )
    system.check({job["id"]: Expect("succeeded", completed_by="callback") for job in jobs})


def test_out_of_order_callbacks_do_not_undo_the_ending(system: Rig) -> None:
    tag = tagged("out of order")
    system.emulator.add_fault("callback_out_of_order", match_prompt=tag)
    refused = f"{tag} refused"
    system.emulator.add_fault("generation_failed", match_prompt=refused, message="content policy")
    # Vidgo: a "running" notice after "finished"; Kie: the opposite ending after the real one.
    jobs = system.submit_all(
        [
            {"provider": "vidgo", "prompt": f"{tag} vidgo"},
            {"provider": "kie", "prompt": f"{tag} kie"},
            {"provider": "kie", "prompt": f"{refused} kie"},
        ]
    )
    finished = system.wait_terminal([job["id"] for job in jobs])
    for job in finished.values():
        stale = answered(system, job.provider_task_id, "stale")
        assert stale[0].status_code == 200, stale
    vidgo, kie, kie_refused = (job["id"] for job in jobs)
    system.check(
        {
            vidgo: Expect("succeeded", completed_by="callback"),
            kie: Expect("succeeded", completed_by="callback"),
            kie_refused: Expect("failed", error="generation_failed", completed_by="callback"),
        }
    )


def test_a_callback_arriving_after_polling_finished_the_job_changes_nothing(system: Rig) -> None:
    tag = tagged("late callback")
    # The first poll (5 s) finds the task done (2 s) long before the delayed callback (9 s).
    system.emulator.add_fault("callback_delay", match_prompt=tag, seconds=7)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in CALLBACK_PROVIDERS])
    finished = system.wait_terminal([job["id"] for job in jobs])
    system.wait_idle()
    before = {job_id: system.raw_item(job_id) for job_id in finished}
    for job_id, job in finished.items():
        assert job.completed_by == "poll", job_id
        late = answered(system, job.provider_task_id, "genuine")
        assert late[0].status_code == 200
        assert item_unchanged(before[job_id], system.raw_item(job_id)) == []
    system.check({job["id"]: Expect("succeeded", completed_by="poll") for job in jobs})


def test_dropped_callbacks_are_completed_by_polling(system: Rig) -> None:
    tag = tagged("dropped callback")
    system.emulator.add_fault("callback_drop", match_prompt=tag)
    jobs = system.submit_all([{"provider": p, "prompt": f"{tag} {p}"} for p in CALLBACK_PROVIDERS])
    system.wait_terminal([job["id"] for job in jobs])
    system.check({job["id"]: Expect("succeeded", completed_by="poll") for job in jobs})


FORGERIES = [
    ("kie", "bad_signature"),
    ("kie", "stale_timestamp"),
    ("kie", "bad_token"),
    ("kie", "wrong_task"),
    ("vidgo", "bad_token"),
    ("vidgo", "wrong_task"),
]


def test_forged_provider_callbacks_are_refused_and_polling_completes_the_jobs(system: Rig) -> None:
    tag = tagged("forged")
    requests = []
    for provider, how in FORGERIES:
        prompt = f"{tag} {provider} {how}"
        system.emulator.add_fault("callback_forged", provider=provider, match_prompt=prompt, how=how)
        requests.append({"provider": provider, "prompt": prompt})
    jobs = system.submit_all(requests)
    finished = system.wait_terminal([job["id"] for job in jobs])
    for (provider, how), job in zip(FORGERIES, jobs, strict=True):
        task_id = finished[job["id"]].provider_task_id or ""
        forged = answered(system, task_id, f"forged:{how}")
        assert {a.status_code for a in forged} == {401}, (provider, how, forged)
        assert not deliveries(system, task_id, "genuine")
    system.check({job["id"]: Expect("succeeded", completed_by="poll") for job in jobs})


@dataclass(frozen=True)
class Forgery:
    what: str
    path: str  # the provider named in the callback path
    job_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int = 401
    reason: str | None = "bad_token"
    token: str | None = None  # None: the job's real token


def rejected(response: Any, status: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if reason is not None:
        assert error["details"]["reason"] == reason, error


def test_hand_made_forgeries_leave_a_waiting_job_byte_for_byte_unchanged(system: Rig) -> None:
    """Jobs whose provider task finished but whose callback was lost, with their pollers stopped: only an
    accepted callback could move them now. Every forgery is refused; then the genuine callback completes
    them, and replaying it changes nothing."""
    tag = tagged("waiting")
    system.emulator.add_fault("callback_drop", match_prompt=tag)
    donor, kie_job, vidgo_job = system.submit_all(
        [
            {"provider": "kie", "prompt": tagged("donor")},
            {"provider": "kie", "prompt": f"{tag} kie"},
            {"provider": "vidgo", "prompt": f"{tag} vidgo"},
        ]
    )
    for job in (kie_job, vidgo_job):
        system.stop_poller(job["id"])
    done = system.wait_terminal([donor["id"]])[donor["id"]]
    donor_body, donor_headers = system.genuine_callback(done.provider_task_id or "")
    kie_task, vidgo_task = kie_job["provider_task_id"], vidgo_job["provider_task_id"]
    system.wait_for(
        lambda: all(system.emulator.task(t).state.value == "succeeded" for t in (kie_task, vidgo_task)),  # type: ignore[union-attr]
        15,
        "both provider tasks finished",
    )
    system.wait_idle()
    kie_body = system.provider_callback_body(kie_task)
    vidgo_body = system.provider_callback_body(vidgo_task)
    before = {job["id"]: system.raw_item(job["id"]) for job in (kie_job, vidgo_job)}
    kie_id, vidgo_id = kie_job["id"], vidgo_job["id"]
    now = int(time.time())
    signed = system.kie_headers(kie_task)
    oversized = {**kie_body, "padding": "x" * (300 * 1024)}

    donor_task = done.provider_task_id or ""
    other_vidgo_task = {**vidgo_body, "data": {**vidgo_body["data"], "task_id": "task-unified-1757165031-uyujaw3d"}}
    forgeries: list[Forgery] = [
        Forgery("no token", "kie", kie_id, kie_body, signed, token=""),
        Forgery("another job's token", "kie", kie_id, kie_body, signed, token=system.callback_token(vidgo_id, "kie")),
        Forgery("a truncated token", "kie", kie_id, kie_body, signed, token=system.callback_token(kie_id, "kie")[:-2]),
        Forgery("no Kie signature", "kie", kie_id, kie_body, {}, reason="missing_timestamp"),
        Forgery("a signature under another key", "kie", kie_id, kie_body, system.kie_headers(kie_task, key="nope"),
                reason="bad_signature"),
        Forgery("a signature for another task", "kie", kie_id, kie_body, system.kie_headers(donor_task),
                reason="bad_signature"),
        Forgery("a stale signed timestamp", "kie", kie_id, kie_body,
                system.kie_headers(kie_task, timestamp=now - 3600), reason="stale_timestamp"),
        Forgery("a future signed timestamp", "kie", kie_id, kie_body,
                system.kie_headers(kie_task, timestamp=now + 3600), reason="future_timestamp"),
        Forgery("another job's genuine callback replayed", "kie", kie_id, donor_body, donor_headers,
                reason="wrong_task"),
        Forgery("a fresh signature on another task's body", "kie", kie_id, donor_body, system.kie_headers(donor_task),
                reason="wrong_task"),
        Forgery("the path of another provider", "vidgo", kie_id, vidgo_body, {},
                token=system.callback_token(kie_id, "kie")),
        Forgery("a token for the job minted for another provider", "vidgo", kie_id, vidgo_body, {},
                token=system.callback_token(kie_id, "vidgo"), reason="wrong_provider"),
        Forgery("a provider without callbacks", "aimlapi", kie_id, kie_body, signed, 404, "unknown_provider"),
        Forgery("an oversized body", "kie", kie_id, oversized, signed, 413, None),
        Forgery("vidgo without a token", "vidgo", vidgo_id, vidgo_body, {}, token=""),
        Forgery("vidgo with a Kie job's token", "vidgo", vidgo_id, vidgo_body, {},
                token=system.callback_token(kie_id, "kie")),
        Forgery("vidgo naming another task", "vidgo", vidgo_id, other_vidgo_task, {}, reason="wrong_task"),
        Forgery("vidgo on the Kie path", "kie", vidgo_id, kie_body, signed, reason="wrong_provider"),
        Forgery("vidgo oversized", "vidgo", vidgo_id, {**vidgo_body, "padding": "x" * (300 * 1024)}, {}, 413, None),
    ]  # fmt: skip
    for forgery in forgeries:
        response = system.post_callback(
            forgery.path, forgery.job_id, forgery.body, headers=forgery.headers, token=forgery.token
        )
        try:
            rejected(response, forgery.status, forgery.reason)
        except AssertionError as exc:
            raise AssertionError(f"{forgery.what}: {exc}") from exc
    for job_id, item in before.items():
        assert item_unchanged(item, system.raw_item(job_id)) == [], job_id

    # The genuine callbacks (the provider's own body, a fresh signature, the job's token) do move them.
    genuine_kie = system.post_callback("kie", kie_id, kie_body, headers=system.kie_headers(kie_task))
    genuine_vidgo = system.post_callback("vidgo", vidgo_id, vidgo_body)
    assert (genuine_kie.status_code, genuine_kie.json()["result"]) == (200, "applied")
    assert (genuine_vidgo.status_code, genuine_vidgo.json()["result"]) == (200, "applied")
    system.wait_terminal([kie_id, vidgo_id])
    system.wait_idle()
    after = {job_id: system.raw_item(job_id) for job_id in (kie_id, vidgo_id)}

    # Replayed once the jobs are done: accepted as hints, ignored; a replay past Kie's window is refused.
    replays = [
        system.post_callback("kie", kie_id, kie_body, headers=system.kie_headers(kie_task)),
        system.post_callback("vidgo", vidgo_id, vidgo_body),
    ]
    assert [(r.status_code, r.json()["result"]) for r in replays] == [(200, "ignored"), (200, "ignored")]
    stale = system.post_callback("kie", kie_id, kie_body, headers=system.kie_headers(kie_task, timestamp=now - 900))
    rejected(stale, 401, "stale_timestamp")
    for job_id, item in after.items():
        assert item_unchanged(item, system.raw_item(job_id)) == [], job_id
    system.check(
        {
            donor["id"]: Expect("succeeded", completed_by="callback"),
            kie_id: Expect("succeeded", completed_by="callback"),
            vidgo_id: Expect("succeeded", completed_by="callback"),
        }
    )
