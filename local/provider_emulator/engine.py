"""The emulator's state: tasks and their clock, faults, counters, and callback planning.

One re-entrant lock guards everything here; nothing slow (sleeping, network) happens while it is held.
A scheduler thread ends tasks when their time is up, so callbacks fire even if nobody polls; a status
query that arrives first ends the task itself (`settle`), so polling never sees a stale state.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from local.provider_emulator.callbacks import CallbackDispatcher, Delivery, DeliveryPlan, Signing
from local.provider_emulator.faults import (
    CallbackDelayFault,
    CallbackDropFault,
    CallbackDuplicateFault,
    CallbackForgedFault,
    CallbackOutOfOrderFault,
    FaultBook,
    GenerationFailedFault,
    LatencyFault,
    ResultSizeFault,
)
from local.provider_emulator.limits import ProviderLimit, Refusal, SubmitLimiter
from local.provider_emulator.providers.base import ProviderApi, SubmitSpec
from local.provider_emulator.tasks import CallbackAttempt, Phase, Task, TaskSnapshot, TaskView
from shared.models.common import PROVIDER_NAMES, ProviderName

log = logging.getLogger(__name__)

DEFAULT_FAIL_MESSAGE = "video generation failed"


@dataclass
class EmulatorConfig:
    job_seconds: float
    api_keys: dict[ProviderName, str]
    kie_hmac_key: str | None
    provider_job_seconds: dict[ProviderName, float] = field(default_factory=dict)
    callback_backoff_scale: float = 1.0
    # Answer in every shape each provider's docs show, rotating per task (and per error answer).
    variants: bool = False
    # Submit limits the providers enforce (absent: none).
    limits: dict[ProviderName, ProviderLimit] = field(default_factory=dict)

    def seconds_for(self, provider: ProviderName) -> float:
        return self.provider_job_seconds.get(provider, self.job_seconds)


class ProviderStats(BaseModel):
    submits: int = 0
    submits_accepted: int = 0
    submits_rejected: int = 0  # refusals of every kind, rate-limited ones included
    submits_rate_limited: int = 0  # refused by a limit (window rate or tasks in flight)
    status_queries: int = 0
    downloads: int = 0
    callbacks: int = 0  # attempts, retries included
    callbacks_delivered: int = 0


StatName = Literal[
    "submits",
    "submits_accepted",
    "submits_rejected",
    "submits_rate_limited",
    "status_queries",
    "downloads",
    "callbacks",
    "callbacks_delivered",
]


class Engine:
    def __init__(
        self,
        config: EmulatorConfig,
        apis: Mapping[ProviderName, ProviderApi],
        limit_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.apis = dict(apis)
        self.faults = FaultBook()
        self.base_url = ""
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._tasks: dict[str, Task] = {}
        self._files: dict[str, Task] = {}
        self._deadlines: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._stats = {name: ProviderStats() for name in PROVIDER_NAMES}
        self._callback_log: list[CallbackAttempt] = []
        self._variant_counters = dict.fromkeys(PROVIDER_NAMES, 0)
        self._generation = 0
        self.limiter = SubmitLimiter(limit_clock)
        self.dispatcher = CallbackDispatcher(
            self.record_attempt, lambda: self._generation, lambda: self.config.callback_backoff_scale
        )
        self._scheduler = threading.Thread(target=self._run_scheduler, name="emulator-scheduler", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def start(self, base_url: str) -> None:
        self.base_url = base_url
        self._scheduler.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        self._scheduler.join(timeout=5)
        self.dispatcher.stop()

    def reset(self) -> None:
        """Forget tasks, faults and logs; callbacks still pending for old tasks are abandoned."""
        with self._wake:
            self._generation += 1
            self._tasks.clear()
            self._files.clear()
            self._deadlines.clear()
            self._callback_log.clear()
            self._stats = {name: ProviderStats() for name in PROVIDER_NAMES}
            self._variant_counters = dict.fromkeys(PROVIDER_NAMES, 0)
            self.limiter.reset()
            self.faults.clear()
            self._wake.notify_all()

    # -- counters --------------------------------------------------------------------------------

    def count(self, provider: ProviderName, stat: StatName) -> None:
        with self._lock:
            stats = self._stats[provider]
            setattr(stats, stat, getattr(stats, stat) + 1)

    def stats(self) -> dict[ProviderName, ProviderStats]:
        with self._lock:
            return {name: stats.model_copy() for name, stats in self._stats.items()}

    def record_attempt(self, attempt: CallbackAttempt) -> None:
        with self._lock:
            task = self._tasks.get(attempt.task_id)
            if task is None:  # forgotten by a reset while the attempt was in flight
                return
            task.callback_attempts.append(attempt)
            self._callback_log.append(attempt)
            if attempt.label != "dropped":
                self.count(attempt.provider, "callbacks")
            if attempt.delivered:
                self.count(attempt.provider, "callbacks_delivered")

    def callback_log(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._callback_log)

    def next_variant(self, api: ProviderApi) -> int:
        """The next of the provider's answer shapes in rotation (always the first with variants off)."""
        with self._lock:
            if not self.config.variants or api.variants <= 1:
                return 0
            count = self._variant_counters[api.name]
            self._variant_counters[api.name] = count + 1
            return count % api.variants

    # -- faults applied in the request thread ----------------------------------------------------

    def pause_for_latency(self, provider: ProviderName, prompt: str | None, on: str) -> None:
        fault = self.faults.take(LatencyFault, provider, prompt, on=on)
        if fault is not None:
            self._stopping.wait(fault.seconds)

    # -- tasks -----------------------------------------------------------------------------------

    def create_task(self, api: ProviderApi, spec: SubmitSpec, body: dict[str, Any]) -> Task | Refusal:
        """A new task, or why the provider's limits refuse it now (checked and taken atomically)."""
        plans: list[DeliveryPlan] = []
        try:
            with self._wake:
                limit = self.config.limits.get(api.name)
                if limit is not None and limit.max_concurrent is not None:
                    plans = self._end_overdue(api.name)
                refusal = self.limiter.refusal(api.name, limit)
                if refusal is not None:
                    self.count(api.name, "submits_rejected")
                    self.count(api.name, "submits_rate_limited")
                    return refusal
                task = self._new_task(api, spec, body)
                self.limiter.accepted(api.name, task.task_id, limit)
                return task
        finally:
            for plan in plans:
                self.dispatcher.dispatch(plan)

    def _end_overdue(self, provider: ProviderName) -> list[DeliveryPlan]:
        """End this provider's in-flight tasks whose time is up, so none is counted in flight late."""
        now = time.time()
        plans: list[DeliveryPlan] = []
        for task_id in self.limiter.in_flight(provider):
            task = self._tasks.get(task_id)
            if task is not None and task.outcome is None and task.deadline <= now:
                plan = self._finalize(task, None, None)
                if plan is not None:
                    plans.append(plan)
        return plans

    def _new_task(self, api: ProviderApi, spec: SubmitSpec, body: dict[str, Any]) -> Task:
        now = time.time()
        with self._wake:
            task_id = api.new_task_id(spec, now)
            while task_id in self._tasks:  # pragma: no cover - random ids do not collide in practice
                task_id = api.new_task_id(spec, now)
            task = Task(
                provider=api.name,
                task_id=task_id,
                file_key=secrets.token_hex(16),
                model=spec.model,
                prompt=spec.prompt,
                submitted=body,
                callback_url=spec.callback_url,
                num_outputs=spec.num_outputs,
                created=now,
                job_seconds=self.config.seconds_for(api.name),
                seconds=spec.duration,
                variant=self.next_variant(api),
            )
            self._tasks[task_id] = task
            self._files[task.file_key] = task
            heapq.heappush(self._deadlines, (task.deadline, next(self._sequence), task_id))
            self.count(api.name, "submits_accepted")
            self._wake.notify_all()
            return task

    def find(self, task_id: str, provider: ProviderName | None = None) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or (provider is not None and task.provider != provider):
                return None
            return task

    def by_file(self, file_key: str) -> Task | None:
        with self._lock:
            return self._files.get(file_key)

    def note_status_query(self, task: Task) -> None:
        with self._lock:
            task.status_queries += 1

    def note_download(self, task: Task) -> None:
        with self._lock:
            task.downloads += 1

    def result_urls(self, task: Task) -> tuple[str, ...]:
        return tuple(
            f"{self.base_url}/cdn/{task.provider}/{task.file_key}/output-{index}.mp4"
            for index in range(task.num_outputs)
        )

    def snapshot(self, task: Task) -> TaskSnapshot:
        """The task as of now, ended first if its time is up."""
        self.settle(task)
        with self._lock:
            return self._snapshot(task, time.time())

    def _snapshot(self, task: Task, now: float) -> TaskSnapshot:
        phase, progress, fraction = task.progress_at(now)
        return TaskSnapshot(
            provider=task.provider,
            task_id=task.task_id,
            model=task.model,
            submitted=task.submitted,
            phase=phase,
            progress=progress,
            fraction=fraction,
            created=task.created,
            finished=task.finished,
            job_seconds=task.job_seconds,
            fail_message=task.fail_message,
            result_urls=self.result_urls(task),
            seconds=task.seconds,
            variant=task.variant,
        )

    def settle(self, task: Task) -> None:
        with self._lock:
            plan = None
            if task.outcome is None and time.time() >= task.deadline and task.task_id in self._tasks:
                plan = self._finalize(task, None, None)
        if plan is not None:
            self.dispatcher.dispatch(plan)

    def finish(self, task_id: str, outcome: Phase, message: str | None) -> Task | None:
        """End a task now (control API). A task that already ended keeps its ending."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            plan = self._finalize(task, outcome, message) if task.outcome is None else None
        if plan is not None:
            self.dispatcher.dispatch(plan)
        return task

    def _finalize(self, task: Task, outcome: Phase | None, message: str | None) -> DeliveryPlan | None:
        now = time.time()
        phase, progress, _ = task.progress_at(now)
        if outcome is None:
            failure = self.faults.take(GenerationFailedFault, task.provider, task.prompt)
            outcome = Phase.SUCCEEDED if failure is None else Phase.FAILED
            message = None if failure is None else failure.message
        task.end_progress = progress if phase is Phase.RUNNING else 0
        task.outcome = outcome
        task.finished = now
        self.limiter.ended(task.provider, task.task_id)
        if outcome is Phase.FAILED:
            task.fail_message = message or DEFAULT_FAIL_MESSAGE
        else:
            size = self.faults.take(ResultSizeFault, task.provider, task.prompt)
            task.result_bytes = None if size is None else size.bytes
        log.debug("task %s (%s) ended: %s", task.task_id, task.provider, outcome)
        return self._plan_callbacks(task, now)

    # -- callbacks -------------------------------------------------------------------------------

    def _plan_callbacks(self, task: Task, now: float) -> DeliveryPlan | None:
        api = self.apis[task.provider]
        policy = api.callbacks
        if policy is None or task.callback_url is None:
            return None
        if self.faults.take(CallbackDropFault, task.provider, task.prompt) is not None:
            self.record_attempt(
                CallbackAttempt(
                    task_id=task.task_id,
                    provider=task.provider,
                    url=task.callback_url,
                    label="dropped",
                    attempt=0,
                    sent_at=now,
                )
            )
            return None
        delay = self.faults.take(CallbackDelayFault, task.provider, task.prompt)
        duplicate = self.faults.take(CallbackDuplicateFault, task.provider, task.prompt)
        stale = self.faults.take(CallbackOutOfOrderFault, task.provider, task.prompt)
        forged = self.faults.take(CallbackForgedFault, task.provider, task.prompt, forged_signature_ok=policy.signed)

        snapshot = self._snapshot(task, now)
        key = self.config.kie_hmac_key if policy.signed else None
        signing = Signing(key, task.task_id) if policy.signed else None
        main = Delivery("genuine", task.callback_url, api.vary(api.callback_body(snapshot), task.variant), signing)
        if forged is not None:
            main = self._forge(api, task, snapshot, main, forged)

        deliveries = [main]
        if duplicate is not None:
            deliveries += [replace(main, label=f"duplicate:{main.label}")] * duplicate.count
        if stale is not None:
            stale_body = api.vary(api.stale_callback_body(snapshot), task.variant)
            deliveries.append(Delivery("stale", task.callback_url, stale_body, signing))
        return DeliveryPlan(
            provider=task.provider,
            task_id=task.task_id,
            generation=self._generation,
            policy=policy,
            delay=0.0 if delay is None else delay.seconds,
            deliveries=tuple(deliveries),
        )

    def _forge(
        self, api: ProviderApi, task: Task, snapshot: TaskSnapshot, genuine: Delivery, fault: CallbackForgedFault
    ) -> Delivery:
        """The forged notice sent instead of the genuine one."""
        label = f"forged:{fault.how}"
        key = self.config.kie_hmac_key
        if fault.how == "bad_signature":
            return replace(genuine, label=label, signing=Signing(key, task.task_id, corrupt=True))
        if fault.how == "stale_timestamp":
            return replace(genuine, label=label, signing=Signing(key, task.task_id, age_seconds=fault.age_seconds))
        if fault.how == "bad_token":
            return replace(genuine, label=label, url=_with_forged_token(genuine.url))
        # wrong_task: a real-looking notice about another task, correctly signed for that task id, sent to
        # this task's callback URL (and so carrying this task's token).
        other = next(
            (t.task_id for t in reversed(self._tasks.values()) if t.provider == task.provider and t is not task),
            None,
        )
        if other is None:
            other = api.new_task_id(SubmitSpec(model=task.model, prompt=task.prompt), time.time())
        body = api.callback_body(replace(snapshot, task_id=other))
        signing = None if genuine.signing is None else Signing(key, other)
        return Delivery(label, genuine.url, body, signing)

    # -- views -----------------------------------------------------------------------------------

    def view(self, task: Task) -> TaskView:
        self.settle(task)
        with self._lock:
            snapshot = self._snapshot(task, time.time())
            api = self.apis[task.provider]
            return TaskView(
                provider=task.provider,
                task_id=task.task_id,
                model=task.model,
                state=snapshot.phase,
                provider_status=api.raw_status(snapshot.phase, snapshot.fraction),
                progress=snapshot.progress,
                prompt=task.prompt,
                submitted=task.submitted,
                callback_url=task.callback_url,
                created_at=task.created,
                job_seconds=task.job_seconds,
                finished_at=task.finished,
                fail_message=task.fail_message,
                result_urls=list(snapshot.result_urls) if snapshot.phase is Phase.SUCCEEDED else [],
                result_bytes=task.result_bytes,
                status_queries=task.status_queries,
                downloads=task.downloads,
                callback_attempts=list(task.callback_attempts),
                variant=task.variant,
            )

    def tasks(self, provider: ProviderName | None = None) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if provider is None or t.provider == provider]

    # -- scheduler -------------------------------------------------------------------------------

    def _run_scheduler(self) -> None:
        while True:
            plans: list[DeliveryPlan] = []
            with self._wake:
                while not plans:
                    if self._stopping.is_set():
                        return
                    now = time.time()
                    while self._deadlines and self._deadlines[0][0] <= now:
                        _, _, task_id = heapq.heappop(self._deadlines)
                        task = self._tasks.get(task_id)
                        if task is not None and task.outcome is None:
                            plan = self._finalize(task, None, None)
                            if plan is not None:
                                plans.append(plan)
                    if plans:
                        break
                    timeout = self._deadlines[0][0] - now if self._deadlines else None
                    self._wake.wait(timeout)
            for plan in plans:
                self.dispatcher.dispatch(plan)


def _with_forged_token(url: str) -> str:
    """The callback URL with its `token` query parameter replaced (or added) by a wrong one."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", f"forged-{secrets.token_hex(12)}"))
    return urlunsplit(parts._replace(query=urlencode(query)))
