"""A poll and a provider callback completing the same job at once: one archive, one event per change.

The table's stream is the outbox, so the stored changes are read back from it (moto keeps the
stream) and fed through the notify step's `event_for_change`, exactly as the notify function does.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import respx

from functions.callback import handler as callback_handler
from functions.poll import handler as poll_handler
from shared.models.common import JobStatus
from shared.models.job import JobRecord
from shared.runtime import Runtime
from shared.services.notify import event_for_change
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, HttpAnswer, answer, api_event

PROVIDERS = Path(__file__).resolve().parent.parent / "events" / "providers"
VIDGO_TASK = "task-unified-1757165031-uyujaw3d"
VIDGO_STATUS = f"https://api.vidgo.ai/api/generate/status/{VIDGO_TASK}"
RESULT_URL = "https://cdn.example.com/results/fox.mp4"


def vidgo(status: str, *, error: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PROVIDERS / "vidgo" / "status_running.json").read_text())
    document["data"].update(status=status, error_message=error)
    if status == "finished":
        document["data"]["files"] = [{"file_url": RESULT_URL, "file_type": "video"}]
        document["data"]["progress"] = 100
    return document


@dataclass
class Scene:
    cloud: Cloud
    rt: Runtime
    router: Any

    def running_job(self) -> JobRecord:
        job = build_job(provider="vidgo")
        self.rt.jobs.create(job)
        job = self.rt.jobs.transition(job, JobStatus.QUEUED, provider_task_id=VIDGO_TASK)
        return self.rt.jobs.transition(job, JobStatus.RUNNING)

    def stored(self, job: JobRecord) -> JobRecord:
        found = self.rt.jobs.get(job.id)
        assert found is not None
        return found

    def changes(self, job: JobRecord) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Every stored change of the job, in order, as (new image, old image) from the table's stream."""
        arn = self.cloud.clients["dynamodb"].describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        streams = boto3.client("dynamodbstreams")
        found = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                found.extend(page["Records"])
                iterator = page.get("NextShardIterator")
        return [
            (record["dynamodb"]["NewImage"], record["dynamodb"].get("OldImage"))
            for record in found
            if record["dynamodb"]["NewImage"].get("id", {}).get("S") == job.id  # the job's item, not its task claim
        ]

    def events(self, job: JobRecord) -> list[str]:
        """The event types notify publishes for the job's stored changes."""
        types = []
        for new_image, old_image in self.changes(job):
            found = event_for_change(new_image, old_image)
            if found is not None:
                types.append(found[0].type)
        return types

    def statuses(self, job: JobRecord) -> list[str]:
        return [new_image["status"]["S"] for new_image, _ in self.changes(job)]


@pytest.fixture
def scene(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> Iterator[Scene]:
    rt = install_runtime(cloud.runtime(httpx.Client()))
    with respx.mock(assert_all_called=False) as router:
        yield Scene(cloud=cloud, rt=rt, router=router)


def poll(job: JobRecord, polls: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = poll_handler.lambda_handler(
        {"job_id": job.id, "wait_seconds": 15, "polls": polls}, FakeContext()
    )
    return result


def callback(scene: Scene, job: JobRecord, status: str = "finished") -> HttpAnswer:
    token = scene.rt.signing_keys().callback_token(job.id, job.provider)
    event = api_event(
        "POST", f"/callbacks/vidgo/{job.id}?token={token}", raw_body=json.dumps(vidgo(status)), tenant=None
    )
    return answer(callback_handler.lambda_handler(event, FakeContext()))


def test_webhook_landing_while_the_poll_waits_on_the_provider_archives_once(scene: Scene) -> None:
    job = scene.running_job()
    webhook: list[HttpAnswer] = []
    asked = itertools.count()

    def status(request: httpx.Request) -> httpx.Response:
        if next(asked) == 0:  # the poll's question: the webhook arrives (and re-reads) before it is answered
            webhook.append(callback(scene, job))
        return httpx.Response(200, json=vidgo("finished"))

    route = scene.router.get(VIDGO_STATUS).mock(side_effect=status)

    polled = poll(job)

    assert webhook[0].body == {"result": "applied", "status": "archiving"}
    assert (polled["done"], polled["status"], polled["polls"]) == (False, "archiving", 1)
    assert route.call_count == 2
    stored = scene.stored(job)
    assert (stored.status, stored.version, stored.result_urls) == (JobStatus.ARCHIVING, job.version + 1, (RESULT_URL,))
    assert scene.statuses(job) == ["submitting", "queued", "running", "archiving"]
    assert scene.events(job) == ["job.queued", "job.running", "job.archiving"]


def test_webhook_writing_between_the_polls_read_and_write_archives_once(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll's conditional write is the one that loses: it re-reads, sees `archiving`, and stops."""
    job = scene.running_job()
    scene.router.get(VIDGO_STATUS).respond(200, json=vidgo("finished"))
    write = scene.rt.jobs.transition
    writes = itertools.count()
    webhook: list[HttpAnswer] = []

    def webhook_first(current: JobRecord, target: JobStatus, **changes: Any) -> JobRecord:
        if next(writes) == 0:  # the poll is about to write: the webhook gets there first
            webhook.append(callback(scene, job))
        return write(current, target, **changes)

    monkeypatch.setattr(scene.rt.jobs, "transition", webhook_first)

    polled = poll(job)

    assert next(writes) == 2  # the webhook's write and the poll's losing one; the poll did not try again
    assert webhook[0].body == {"result": "applied", "status": "archiving"}
    assert (polled["done"], polled["status"]) == (False, "archiving")
    assert scene.stored(job).version == job.version + 1
    assert scene.events(job) == ["job.queued", "job.running", "job.archiving"]


def test_poll_landing_while_the_webhook_rereads_archives_once(scene: Scene) -> None:
    job = scene.running_job()
    polled: list[dict[str, Any]] = []
    asked = itertools.count()

    def status(request: httpx.Request) -> httpx.Response:
        if next(asked) == 0:  # the webhook's re-read: the poll runs before it is answered
            polled.append(poll(job))
        return httpx.Response(200, json=vidgo("finished"))

    scene.router.get(VIDGO_STATUS).mock(side_effect=status)

    webhook = callback(scene, job)

    assert (polled[0]["done"], polled[0]["status"]) == (False, "archiving")
    assert (webhook.status, webhook.body["status"]) == (200, "archiving")
    assert scene.stored(job).version == job.version + 1
    assert scene.events(job) == ["job.queued", "job.running", "job.archiving"]


@pytest.mark.parametrize("polls_answer", ["lagging", "error"])
def test_poll_reports_what_is_stored_when_a_webhook_finished_the_job_during_its_check(
    scene: Scene, polls_answer: str
) -> None:
    """The poll's own answer is older than the webhook's (or an error); the stored job wins."""
    job = scene.running_job()
    webhook: list[HttpAnswer] = []
    asked = itertools.count()

    def status(request: httpx.Request) -> httpx.Response:
        if next(asked) == 0:
            webhook.append(callback(scene, job, "failed"))
            if polls_answer == "error":
                return httpx.Response(503, text="unavailable")
            lagging = vidgo("running")
            lagging["data"]["progress"] = None  # nothing new to write from this answer
            return httpx.Response(200, json=lagging)
        return httpx.Response(200, json=vidgo("failed", error="Content policy violation"))  # the re-read

    scene.router.get(VIDGO_STATUS).mock(side_effect=status)

    polled = poll(job)

    assert webhook[0].body == {"result": "applied", "status": "failed"}
    assert (polled["done"], polled["status"], polled["polls"]) == (True, "failed", 1)
    assert scene.events(job) == ["job.queued", "job.running", "job.failed"]


@pytest.mark.parametrize("attempt", range(5))
def test_poll_and_webhook_in_parallel_archive_once(scene: Scene, attempt: int) -> None:
    job = scene.running_job()
    both_asked = threading.Barrier(2, timeout=10)

    def status(request: httpx.Request) -> httpx.Response:
        both_asked.wait()  # neither path gets its answer before the other has asked
        return httpx.Response(200, json=vidgo("finished"))

    scene.router.get(VIDGO_STATUS).mock(side_effect=status)
    with ThreadPoolExecutor(max_workers=2) as pool:
        polling = pool.submit(poll, job)
        calling_back = pool.submit(callback, scene, job)
        polled, webhook = polling.result(timeout=30), calling_back.result(timeout=30)

    assert (polled["done"], polled["status"]) == (False, "archiving")
    assert (webhook.status, webhook.body["status"]) == (200, "archiving")
    stored = scene.stored(job)
    assert (stored.status, stored.version) == (JobStatus.ARCHIVING, job.version + 1)
    assert scene.statuses(job).count("archiving") == 1
    assert scene.events(job) == ["job.queued", "job.running", "job.archiving"]
