"""The tests' probe of the v1 HTTP API: each answer as the server sent it (raw JSON, its status and error code).

Tests of the server read its answers through this, not through the SDK: no retries that would hide a 503 or
a dropped connection, no models that would absorb an unexpected field. Apps, the CLI and the demo use the
SDK (`kling_relay`), which has tests of its own in tests/unit/sdk and tests/e2e/test_sdk.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class RelayClient:
    def __init__(self, base_url: str, api_key: str, http: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout)
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "kling-relay-tests/1"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.http.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "not_json", "message": response.text[:200]}}
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ApiError(
                response.status_code,
                error.get("code", "error"),
                error.get("message") or body.get("message", response.reason_phrase),
                error.get("details"),
            )
        return body

    def submit(self, request: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        key = idempotency_key or str(uuid.uuid4())
        job: dict[str, Any] = self._call("POST", "/jobs", json=request, headers={"Idempotency-Key": key})
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/jobs/{job_id}")
        return job

    def list(self, **filters: Any) -> dict[str, Any]:
        page: dict[str, Any] = self._call("GET", "/jobs", params={k: v for k, v in filters.items() if v is not None})
        return page

    def cancel(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("POST", f"/jobs/{job_id}/cancel")
        return job

    def usage(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", "/usage")
        return answer

    def providers(self) -> dict[str, Any]:
        catalog: dict[str, Any] = self._call("GET", "/providers")
        return catalog

    def wait_dispatched(self, job_id: str, *, timeout: float = 60.0, interval: float = 0.1) -> dict[str, Any]:
        """Poll the job until its workflow has handed it to a provider (or ended it): the provider's task exists,
        so emulator settings that shape tasks (their length) have applied to it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] != "submitting":
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still submitting after {timeout:.0f} s")
            time.sleep(interval)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 1800.0,
        interval: float = 2.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until it finishes (our API is cheap to read; the provider is not asked)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(interval)
