"""Outbound provider callbacks: Kie's signature, delivery plans, and the threads that send them.

Each terminal task with a callback URL gets one plan (built under the emulator's lock, faults already
taken): an optional delay, then deliveries in order (the genuine or forged notice, duplicates, a stale
notice). Each delivery is retried on a non-2xx answer or a connection error per the provider's policy.
Plans run on their own daemon threads, so request handling never waits for a receiver. Every attempt is
reported to `record`; a plan stops when the emulator stops or is reset (its generation changes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from local.provider_emulator.providers.base import CallbackPolicy
from local.provider_emulator.tasks import CallbackAttempt
from shared.models.common import ProviderName

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"


def kie_signature(key: str, task_id: str, timestamp: str) -> str:
    """Kie's webhook signature: Base64 of HMAC-SHA256(key, taskId + "." + timestamp)."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Signing:
    """How to sign one Kie delivery. Signed at send time, so each attempt carries a fresh timestamp."""

    key: str | None
    task_id: str
    age_seconds: int = 0  # > 0: a timestamp this far in the past (a replayed or stale notice)
    corrupt: bool = False  # a signature that does not verify

    def headers(self, now: float) -> dict[str, str]:
        forged = self.corrupt or self.age_seconds > 0
        if self.key is None and not forged:
            return {}
        timestamp = str(int(now) - self.age_seconds)
        if self.key is None or self.corrupt:
            signature = base64.b64encode(secrets.token_bytes(32)).decode()
        else:
            signature = kie_signature(self.key, self.task_id, timestamp)
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}


@dataclass(frozen=True)
class Delivery:
    label: str
    url: str
    body: dict[str, Any]
    signing: Signing | None


@dataclass(frozen=True)
class DeliveryPlan:
    provider: ProviderName
    task_id: str
    generation: int
    policy: CallbackPolicy
    delay: float
    deliveries: tuple[Delivery, ...]


class CallbackDispatcher:
    def __init__(
        self,
        record: Callable[[CallbackAttempt], None],
        generation: Callable[[], int],
        backoff_scale: Callable[[], float],
    ) -> None:
        self._record = record
        self._generation = generation
        self._backoff_scale = backoff_scale
        self._stop = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        # One pooled client for all deliveries (httpx clients are safe to share between threads).
        self._client = httpx.Client(trust_env=False, follow_redirects=False)

    def dispatch(self, plan: DeliveryPlan) -> None:
        thread = threading.Thread(target=self._run, args=(plan,), name=f"callback-{plan.task_id[:24]}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.pending() == 0:  # a delivery still waiting on a slow receiver keeps the client open
            self._client.close()

    def _live(self, plan: DeliveryPlan) -> bool:
        return not self._stop.is_set() and self._generation() == plan.generation

    def _pause(self, seconds: float, plan: DeliveryPlan) -> bool:
        """Sleep; False if the emulator stopped or was reset meanwhile."""
        if seconds > 0:
            self._stop.wait(seconds)
        return self._live(plan)

    def _run(self, plan: DeliveryPlan) -> None:
        try:
            if not self._pause(plan.delay, plan):
                return
            for delivery in plan.deliveries:
                if not self._deliver(plan, delivery):
                    return
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _deliver(self, plan: DeliveryPlan, delivery: Delivery) -> bool:
        """Send one delivery with retries. False when the plan must stop (emulator stopped or reset)."""
        delays = (0.0, *plan.policy.retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if not self._pause(delay * self._backoff_scale(), plan):
                return False
            if self._attempt(plan, delivery, attempt):
                return True
        return True

    def _attempt(self, plan: DeliveryPlan, delivery: Delivery, attempt: int) -> bool:
        now = time.time()
        headers = {"Content-Type": "application/json", "User-Agent": f"{plan.provider}-webhook (emulator)"}
        if delivery.signing is not None:
            headers.update(delivery.signing.headers(now))
        status_code: int | None = None
        error: str | None = None
        try:
            response = self._client.post(
                delivery.url,
                content=json.dumps(delivery.body).encode(),
                headers=headers,
                timeout=plan.policy.timeout,
            )
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.debug("callback to %s failed: %s", delivery.url, error)
        delivered = status_code is not None and 200 <= status_code < 300
        self._record(
            CallbackAttempt(
                task_id=plan.task_id,
                provider=plan.provider,
                url=delivery.url,
                label=delivery.label,
                attempt=attempt,
                sent_at=now,
                status_code=status_code,
                error=error,
                delivered=delivered,
                headers={k: v for k, v in headers.items() if k.startswith("X-Webhook")},
                body=delivery.body,
            )
        )
        return delivered
