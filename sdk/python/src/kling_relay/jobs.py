"""`client.jobs`: create, read, list, cancel, wait for and download video jobs."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from kling_relay import _http
from kling_relay._download import CHUNK_BYTES, Sink, pick_output, target_path
from kling_relay._http import USER_AGENT, Call, ClientConfig
from kling_relay.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    DownloadError,
    JobTerminalError,
    WaitTimeoutError,
)
from kling_relay.models import CANCELED, Job, JobPage, MotionControl, Output

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
DEFAULT_POLL_INTERVAL = 2.0
LIST_PAGE_SIZE = 100

ModelT = TypeVar("ModelT", bound=BaseModel)
JobRef: TypeAlias = str | Job
ProgressCallback: TypeAlias = Callable[[Job], object]


def parse(model: type[ModelT], data: Any) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise APIResponseError(f"the API's answer is not a valid {model.__name__}: {exc}") from exc


def job_id_of(job: JobRef) -> str:
    value = job.id if isinstance(job, Job) else job
    if not _JOB_ID.fullmatch(value):  # it becomes a path segment: nothing that could reach another route
        raise ValueError(f"not a job id: {value!r}")
    return value


def create_call(
    *,
    prompt: str | None,
    provider: str | None,
    negative_prompt: str | None,
    duration: int | None,
    aspect_ratio: str | None,
    sound: bool | None,
    quality: str | None,
    first_frame_url: str | None,
    last_frame_url: str | None,
    motion_control: MotionControl | Mapping[str, Any] | None,
    cfg_scale: float | None,
    num_outputs: int | None,
    prompt_optimization: bool | None,
    watermark: bool | None,
    webhook_url: str | None,
    metadata: Mapping[str, str] | None,
    idempotency_key: str | None,
    extra_body: Mapping[str, Any] | None,
) -> Call:
    fields: dict[str, Any] = {
        "provider": provider,
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "sound": sound,
        "quality": quality,
        "first_frame_url": first_frame_url,
        "last_frame_url": last_frame_url,
        "motion_control": (
            motion_control.model_dump(mode="json", exclude_none=True)
            if isinstance(motion_control, MotionControl)
            else motion_control
        ),
        "cfg_scale": cfg_scale,
        "num_outputs": num_outputs,
        "prompt_optimization": prompt_optimization,
        "watermark": watermark,
        "webhook_url": webhook_url,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    body = {name: value for name, value in fields.items() if value is not None}
    body.update(extra_body or {})
    # One key for every retry of this call: the API answers a retry with the job the first try made.
    key = idempotency_key or str(uuid.uuid4())
    return Call("POST", "/jobs", json=body, headers={"Idempotency-Key": key})


def list_call(*, status: str | None, provider: str | None, limit: int | None, cursor: str | None) -> Call:
    params: dict[str, str | int] = {}
    for name, value in (("status", status), ("provider", provider), ("limit", limit), ("cursor", cursor)):
        if value is not None:
            params[name] = value
    return Call("GET", "/jobs", params=params)


def _next_cursor(page: JobPage, cursor: str | None) -> str | None:
    if page.next_cursor is not None and page.next_cursor == cursor:
        raise APIResponseError(f"the API answered cursor {cursor!r} with the same cursor; stopping the walk")
    return page.next_cursor


def _cancel_was_ours(error: JobTerminalError) -> bool:
    """A retried cancel whose first try took effect (its answer was lost) meets the job it canceled."""
    details = error.details if isinstance(error.details, dict) else {}
    return error.tries > 1 and details.get("status") == CANCELED


def _timeout_message(job: Job, timeout: float) -> str:
    return f"job {job.id} still {job.status} after {timeout:g} s"


class JobPager:
    """Every job matching a filter, newest first, fetching pages as the iteration reaches them."""

    def __init__(self, fetch: Callable[[str | None], JobPage], cursor: str | None = None) -> None:
        self._fetch = fetch
        self._cursor = cursor

    def pages(self) -> Iterator[JobPage]:
        cursor = self._cursor
        while True:
            page = self._fetch(cursor)
            yield page
            cursor = _next_cursor(page, cursor)
            if cursor is None:
                return

    def __iter__(self) -> Iterator[Job]:
        for page in self.pages():
            yield from page.items


class AsyncJobPager:
    """As `JobPager`, for `async for`."""

    def __init__(self, fetch: Callable[[str | None], Awaitable[JobPage]], cursor: str | None = None) -> None:
        self._fetch = fetch
        self._cursor = cursor

    async def pages(self) -> AsyncIterator[JobPage]:
        cursor = self._cursor
        while True:
            page = await self._fetch(cursor)
            yield page
            cursor = _next_cursor(page, cursor)
            if cursor is None:
                return

    async def __aiter__(self) -> AsyncIterator[Job]:
        async for page in self.pages():
            for job in page.items:
                yield job


class Jobs:
    def __init__(self, http: httpx.Client, config: ClientConfig) -> None:
        self._http = http
        self._config = config

    def create(
        self,
        *,
        prompt: str | None = None,
        provider: str | None = None,
        negative_prompt: str | None = None,
        duration: int | None = None,
        aspect_ratio: str | None = None,
        sound: bool | None = None,
        quality: str | None = None,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        motion_control: MotionControl | Mapping[str, Any] | None = None,
        cfg_scale: float | None = None,
        num_outputs: int | None = None,
        prompt_optimization: bool | None = None,
        watermark: bool | None = None,
        webhook_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Job:
        """Submit a job; the API records it and answers at once (`202`), before any video exists.

        Fields left as None are not sent (the API's defaults apply). Every retry of this call sends the
        same `Idempotency-Key` (a new one per call unless given), so a retry never makes a second job.
        `extra_body` adds request fields this SDK version does not name yet.
        """
        call = create_call(
            prompt=prompt,
            provider=provider,
            negative_prompt=negative_prompt,
            duration=duration,
            aspect_ratio=aspect_ratio,
            sound=sound,
            quality=quality,
            first_frame_url=first_frame_url,
            last_frame_url=last_frame_url,
            motion_control=motion_control,
            cfg_scale=cfg_scale,
            num_outputs=num_outputs,
            prompt_optimization=prompt_optimization,
            watermark=watermark,
            webhook_url=webhook_url,
            metadata=metadata,
            idempotency_key=idempotency_key,
            extra_body=extra_body,
        )
        return parse(Job, _http.send(self._http, self._config, call))

    def get(self, job: JobRef) -> Job:
        """The job now, with fresh download links on its outputs."""
        return parse(Job, _http.send(self._http, self._config, Call("GET", f"/jobs/{job_id_of(job)}")))

    def list_page(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first (`limit` 1-100, 20 by default); pass its `next_cursor` for the next."""
        call = list_call(status=status, provider=provider, limit=limit, cursor=cursor)
        return parse(JobPage, _http.send(self._http, self._config, call))

    def list(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
        cursor: str | None = None,
    ) -> JobPager:
        """Every job (optionally of one status or provider), newest first, over as many pages as it takes."""
        return JobPager(lambda at: self.list_page(status=status, provider=provider, limit=page_size, cursor=at), cursor)

    def cancel(self, job: JobRef) -> Job:
        """Stop the job and mark it `canceled`; `JobTerminalError` when it had already finished."""
        job_id = job_id_of(job)
        try:
            return parse(Job, _http.send(self._http, self._config, Call("POST", f"/jobs/{job_id}/cancel")))
        except JobTerminalError as error:
            if _cancel_was_ours(error):
                return self.get(job_id)
            raise

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Read the job every `poll_interval` seconds until it finishes, however it finishes.

        Returns the finished job (check `job.status`: a failed job is returned, not raised).
        `on_progress` gets every view read, the first and the last included; a job waiting for a
        provider shows it in `job.waiting`. After `timeout` seconds (None: until the job ends, which
        the relay bounds by the job's deadline) `WaitTimeoutError` carries the last view; the job goes on.
        """
        job_id = job_id_of(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(job_id)
            if on_progress is not None:
                on_progress(current)
            if current.terminal:
                return current
            pause = poll_interval
            if deadline is not None and timeout is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeoutError(_timeout_message(current, timeout), job=current)
                pause = min(pause, remaining)
            _http._sleep(pause)

    def download(self, job: JobRef, path: str | os.PathLike[str], *, output: int = 0) -> Path:
        """Stream one output of a succeeded job to `path` (a file, or a directory to name it in).

        The bytes are checked against the job's recorded size and SHA-256 before the file appears:
        `ChecksumMismatchError` otherwise, and nothing is left behind. Returns the file's path.
        """
        current = self.get(job)
        chosen = pick_output(current, output)
        target = target_path(path, current, output, chosen)
        retries = 0
        while True:
            try:
                return self._fetch(chosen, target)
            except (APIConnectionError, DownloadError) as error:
                delay = self._config.retry.delay(retries, error)
                if delay is None:
                    raise
            retries += 1
            _http._sleep(delay)

    def _fetch(self, output: Output, target: Path) -> Path:
        with Sink(target, output) as sink:
            try:
                stream = self._http.stream(
                    "GET", output.url, headers={"User-Agent": USER_AGENT}, timeout=self._config.timeout
                )
                with stream as response:
                    sink.check_status(response.status_code)
                    for chunk in response.iter_raw(CHUNK_BYTES):
                        sink.write(chunk)
            except httpx.TransportError as exc:
                raise _download_failure(exc) from exc
            return sink.finish()


class AsyncJobs:
    def __init__(self, http: httpx.AsyncClient, config: ClientConfig) -> None:
        self._http = http
        self._config = config

    async def create(
        self,
        *,
        prompt: str | None = None,
        provider: str | None = None,
        negative_prompt: str | None = None,
        duration: int | None = None,
        aspect_ratio: str | None = None,
        sound: bool | None = None,
        quality: str | None = None,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        motion_control: MotionControl | Mapping[str, Any] | None = None,
        cfg_scale: float | None = None,
        num_outputs: int | None = None,
        prompt_optimization: bool | None = None,
        watermark: bool | None = None,
        webhook_url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Job:
        """As `KlingRelay.jobs.create`."""
        call = create_call(
            prompt=prompt,
            provider=provider,
            negative_prompt=negative_prompt,
            duration=duration,
            aspect_ratio=aspect_ratio,
            sound=sound,
            quality=quality,
            first_frame_url=first_frame_url,
            last_frame_url=last_frame_url,
            motion_control=motion_control,
            cfg_scale=cfg_scale,
            num_outputs=num_outputs,
            prompt_optimization=prompt_optimization,
            watermark=watermark,
            webhook_url=webhook_url,
            metadata=metadata,
            idempotency_key=idempotency_key,
            extra_body=extra_body,
        )
        return parse(Job, await _http.asend(self._http, self._config, call))

    async def get(self, job: JobRef) -> Job:
        return parse(Job, await _http.asend(self._http, self._config, Call("GET", f"/jobs/{job_id_of(job)}")))

    async def list_page(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        call = list_call(status=status, provider=provider, limit=limit, cursor=cursor)
        return parse(JobPage, await _http.asend(self._http, self._config, call))

    def list(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
        cursor: str | None = None,
    ) -> AsyncJobPager:
        """`async for job in client.jobs.list(...)`: every job, newest first."""
        return AsyncJobPager(
            lambda at: self.list_page(status=status, provider=provider, limit=page_size, cursor=at), cursor
        )

    async def cancel(self, job: JobRef) -> Job:
        job_id = job_id_of(job)
        try:
            return parse(Job, await _http.asend(self._http, self._config, Call("POST", f"/jobs/{job_id}/cancel")))
        except JobTerminalError as error:
            if _cancel_was_ours(error):
                return await self.get(job_id)
            raise

    async def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """As `KlingRelay.jobs.wait`."""
        job_id = job_id_of(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = await self.get(job_id)
            if on_progress is not None:
                on_progress(current)
            if current.terminal:
                return current
            pause = poll_interval
            if deadline is not None and timeout is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeoutError(_timeout_message(current, timeout), job=current)
                pause = min(pause, remaining)
            await _http._asleep(pause)

    async def download(self, job: JobRef, path: str | os.PathLike[str], *, output: int = 0) -> Path:
        """As `KlingRelay.jobs.download` (the file is written from the event loop's thread)."""
        current = await self.get(job)
        chosen = pick_output(current, output)
        target = target_path(path, current, output, chosen)
        retries = 0
        while True:
            try:
                return await self._fetch(chosen, target)
            except (APIConnectionError, DownloadError) as error:
                delay = self._config.retry.delay(retries, error)
                if delay is None:
                    raise
            retries += 1
            await _http._asleep(delay)

    async def _fetch(self, output: Output, target: Path) -> Path:
        with Sink(target, output) as sink:
            try:
                stream = self._http.stream(
                    "GET", output.url, headers={"User-Agent": USER_AGENT}, timeout=self._config.timeout
                )
                async with stream as response:
                    sink.check_status(response.status_code)
                    async for chunk in response.aiter_raw(CHUNK_BYTES):
                        sink.write(chunk)
            except httpx.TransportError as exc:
                raise _download_failure(exc) from exc
            return sink.finish()


def _download_failure(exc: httpx.TransportError) -> APIConnectionError:
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return kind(f"downloading the output failed: {type(exc).__name__}: {exc}")
