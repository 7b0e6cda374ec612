"""The notify function: each stored status change on the table stream becomes one SNS event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from functions.notify import handler
from shared.models.common import JobStatus
from shared.models.events import JobEvent, event_id
from shared.models.job import ErrorCode, JobError, JobRecord, StoredOutput
from shared.models.request import JobRequest
from shared.repository import schema
from shared.repository.jobs import IdempotencyClaim, JobRepository
from shared.repository.keys import KeyRepository, hash_key
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, stream_record

# A change that is not an outcome flushes no metric, and Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

WEBHOOK = "https://hooks.example.com/kling"
OUTPUT = StoredOutput(key="jobs/tenant-a/x/output-0.mp4", bytes=2048, sha256="ab" * 32, content_type="video/mp4")
OUTCOME_METRICS = {
    JobStatus.SUCCEEDED: "JobsSucceeded",
    JobStatus.FAILED: "JobsFailed",
    JobStatus.TIMED_OUT: "JobsTimedOut",
    JobStatus.CANCELED: "JobsCanceled",
}


def item(cloud: Cloud, pk: str, sk: str) -> dict[str, Any]:
    """An item exactly as DynamoDB holds it (what a stream image carries)."""
    key = {schema.PK: {"S": pk}, schema.SK: {"S": sk}}
    found: dict[str, Any] = cloud.clients["dynamodb"].get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    return found


def job_item(cloud: Cloud, job_id: str) -> dict[str, Any]:
    return item(cloud, schema.job_pk(job_id), schema.JOB_SK)


class Changes:
    """Stored job changes and the stream records DynamoDB would emit for them."""

    def __init__(self, cloud: Cloud, jobs: JobRepository) -> None:
        self.cloud, self.jobs = cloud, jobs
        self.sequence = 100

    def _record(self, new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        self.sequence += 1
        return stream_record(new, old, sequence=self.sequence)

    def create(self, *, webhook: bool = True, **overrides: Any) -> tuple[JobRecord, dict[str, Any]]:
        request = JobRequest(
            prompt="a red fox running through snow",
            webhook_url=WEBHOOK if webhook else None,
            metadata={"order": "42"},
        )
        job = self.jobs.create(build_job(request=request, **overrides)).job
        return job, self._record(job_item(self.cloud, job.id), None)

    def transition(self, job: JobRecord, target: JobStatus, **changes: Any) -> tuple[JobRecord, dict[str, Any]]:
        before = job_item(self.cloud, job.id)
        job = self.jobs.transition(job, target, **changes)
        return job, self._record(job_item(self.cloud, job.id), before)

    def update(self, job: JobRecord, **changes: Any) -> tuple[JobRecord, dict[str, Any]]:
        before = job_item(self.cloud, job.id)
        job = self.jobs.update(job, **changes)
        return job, self._record(job_item(self.cloud, job.id), before)

    def to(self, target: JobStatus, *, webhook: bool = True, **overrides: Any) -> tuple[JobRecord, dict[str, Any]]:
        """A new job walked to `target` along the normal path; the record of its last change."""
        job, record = self.create(webhook=webhook, **overrides)
        path = {
            JobStatus.QUEUED: [JobStatus.QUEUED],
            JobStatus.RUNNING: [JobStatus.QUEUED, JobStatus.RUNNING],
            JobStatus.ARCHIVING: [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.ARCHIVING],
            JobStatus.SUCCEEDED: [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.ARCHIVING, JobStatus.SUCCEEDED],
            JobStatus.FAILED: [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED],
            JobStatus.TIMED_OUT: [JobStatus.QUEUED, JobStatus.TIMED_OUT],
            JobStatus.CANCELED: [JobStatus.QUEUED, JobStatus.CANCELED],
        }[target]
        fields: dict[JobStatus, dict[str, Any]] = {
            JobStatus.QUEUED: {"provider_task_id": f"task-{job.id}"},  # one task per job
            JobStatus.RUNNING: {"progress": 10},
            JobStatus.ARCHIVING: {"result_urls": ("https://cdn.example.com/fox.mp4",), "progress": 100},
            JobStatus.SUCCEEDED: {"outputs": (OUTPUT,)},
            JobStatus.FAILED: {
                "error": JobError(code=ErrorCode.GENERATION_FAILED, message="nsfw", provider_code="501")
            },
            JobStatus.TIMED_OUT: {"error": JobError(code=ErrorCode.DEADLINE_EXCEEDED, message="no result in time")},
            JobStatus.CANCELED: {"error": JobError(code=ErrorCode.CANCELED, message="canceled by its owner")},
        }
        for status in path:
            job, record = self.transition(job, status, **fields[status])
        return job, record


class Publishes:
    """Every SNS publish call (they still reach moto), optionally failing for chosen jobs."""

    def __init__(self, sns: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_for: set[str] = set()
        original = sns.publish

        def publish(**kwargs: Any) -> Any:
            if json.loads(kwargs["Message"])["data"]["id"] in self.fail_for:
                raise ClientError({"Error": {"Code": "Throttling", "Message": "injected"}}, "Publish")
            self.calls.append(kwargs)
            return original(**kwargs)

        monkeypatch.setattr(sns, "publish", publish)

    def events(self) -> list[JobEvent]:
        return [JobEvent.model_validate_json(call["Message"]) for call in self.calls]

    def attributes(self, index: int = 0) -> dict[str, str]:
        raw = self.calls[index]["MessageAttributes"]
        assert all(value["DataType"] == "String" for value in raw.values())
        return {name: value["StringValue"] for name, value in raw.items()}


@pytest.fixture
def changes(cloud: Cloud, jobs: JobRepository) -> Changes:
    return Changes(cloud, jobs)


@pytest.fixture
def published(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], monkeypatch: pytest.MonkeyPatch
) -> Publishes:
    install_runtime(cloud.runtime(httpx.Client()))
    return Publishes(cloud.clients["sns"], monkeypatch)


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the handler; the sequence numbers the stream will deliver again."""
    try:
        result = handler.lambda_handler({"Records": list(records)}, FakeContext())
    except BatchProcessingError:
        # Powertools raises when every record failed: the whole batch is retried.
        return [record["dynamodb"]["SequenceNumber"] for record in records]
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def emitted_metrics(out: str) -> list[str]:
    """Names of the CloudWatch (EMF) metrics printed by the invocations."""
    names: list[str] = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names.extend(metric["Name"] for metric in directive["Metrics"])
    return names


def queued_events(cloud: Cloud) -> list[tuple[JobEvent, dict[str, str]]]:
    """What reached the webhook queue (raw delivery), with its message attributes."""
    found = []
    for message in cloud.messages():
        attributes = {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}
        found.append((JobEvent.model_validate_json(message["Body"]), attributes))
    return found


# -- which changes are events ---------------------------------------------------------------------------


def test_inserting_a_submitting_job_is_not_an_event(changes: Changes, published: Publishes, cloud: Cloud) -> None:
    _, record = changes.create()
    assert record["eventName"] == "INSERT"
    assert run(record) == []
    assert published.calls == []
    assert cloud.messages() == []


def test_a_queued_job_publishes_job_queued_with_its_attributes(
    changes: Changes, published: Publishes, cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    job, record = changes.to(JobStatus.QUEUED)
    assert run(record) == []
    [event] = published.events()
    assert event.type == "job.queued"
    assert event.id == event_id(job.id, job.version, JobStatus.QUEUED)
    assert event.created_at == job.updated_at
    assert event.data.id == job.id
    assert event.data.status is JobStatus.QUEUED
    assert event.data.provider == "kie"
    assert event.data.provider_task_id == f"task-{job.id}"
    assert str(event.data.request.webhook_url) == WEBHOOK
    assert event.data.metadata == {"order": "42"}
    assert published.calls[0]["TopicArn"] == cloud.settings.topic_arn
    assert published.attributes() == {
        "type": "job.queued",
        "status": "queued",
        "provider": "kie",
        "tenant_id": "tenant-a",
        "has_webhook": "true",
    }
    assert emitted_metrics(capsys.readouterr().out) == []
    [(delivered, attributes)] = queued_events(cloud)
    assert delivered == event
    assert attributes["tenant_id"] == "tenant-a"


def test_a_change_of_progress_only_is_not_an_event(changes: Changes, published: Publishes) -> None:
    job, _ = changes.to(JobStatus.RUNNING)
    _, record = changes.update(job, progress=55)
    assert record["eventName"] == "MODIFY"
    assert record["dynamodb"]["OldImage"]["status"] == record["dynamodb"]["NewImage"]["status"]
    assert run(record) == []
    assert published.calls == []


@pytest.mark.parametrize("status", list(OUTCOME_METRICS))
def test_every_terminal_status_is_an_event_and_an_outcome_metric(
    changes: Changes, published: Publishes, capsys: pytest.CaptureFixture[str], status: JobStatus
) -> None:
    job, record = changes.to(status)
    capsys.readouterr()
    assert run(record) == []
    [event] = published.events()
    assert event.type == f"job.{status.value}"
    assert event.data.status is status
    assert event.data.completed_at == job.completed_at
    assert event.data.error == job.error
    assert published.attributes()["status"] == status.value
    assert emitted_metrics(capsys.readouterr().out) == [OUTCOME_METRICS[status]]


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.ARCHIVING])
def test_intermediate_statuses_are_events_without_outcome_metrics(
    changes: Changes, published: Publishes, capsys: pytest.CaptureFixture[str], status: JobStatus
) -> None:
    _, record = changes.to(status)
    capsys.readouterr()
    assert run(record) == []
    assert [event.type for event in published.events()] == [f"job.{status.value}"]
    assert emitted_metrics(capsys.readouterr().out) == []


def test_a_succeeded_event_describes_outputs_without_any_url_or_key(
    changes: Changes, published: Publishes, cloud: Cloud
) -> None:
    job, record = changes.to(JobStatus.SUCCEEDED)
    assert run(record) == []
    message = published.calls[0]["Message"]
    event = JobEvent.model_validate_json(message)
    assert [o.model_dump() for o in event.data.outputs] == [
        {"index": 0, "bytes": 2048, "sha256": "ab" * 32, "content_type": "video/mp4"}
    ]
    raw_output = json.loads(message)["data"]["outputs"][0]
    assert "url" not in raw_output
    assert "expires_at" not in raw_output
    assert OUTPUT.key not in message
    assert cloud.settings.bucket_name not in message
    assert "X-Amz-" not in message
    assert "cdn.example.com" not in message  # the provider's result URLs stay internal too
    assert job.result_urls


# -- ids, duplicates, routing ---------------------------------------------------------------------------


def test_event_ids_are_stable_for_a_record_and_differ_per_change(changes: Changes, published: Publishes) -> None:
    job, queued = changes.to(JobStatus.QUEUED)
    _, running = changes.transition(job, JobStatus.RUNNING)
    assert run(queued) == []
    assert run(queued) == []  # the stream delivers a record again
    assert run(running) == []
    ids = [event.id for event in published.events()]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]
    assert [event.type for event in published.events()] == ["job.queued", "job.queued", "job.running"]


def test_the_same_status_on_two_jobs_gives_two_ids(changes: Changes, published: Publishes) -> None:
    _, first = changes.to(JobStatus.QUEUED)
    _, second = changes.to(JobStatus.QUEUED)
    assert run(first, second) == []
    assert len({event.id for event in published.events()}) == 2


def test_only_jobs_with_a_webhook_reach_the_webhook_queue(changes: Changes, published: Publishes, cloud: Cloud) -> None:
    with_hook, first = changes.to(JobStatus.QUEUED)
    without_hook, second = changes.to(JobStatus.QUEUED, webhook=False, tenant_id="tenant-b", provider="vidgo")
    assert run(first, second) == []
    assert [call["MessageAttributes"]["has_webhook"]["StringValue"] for call in published.calls] == ["true", "false"]
    assert published.attributes(1) == {
        "type": "job.queued",
        "status": "queued",
        "provider": "vidgo",
        "tenant_id": "tenant-b",
        "has_webhook": "false",
    }
    delivered = queued_events(cloud)
    assert [event.data.id for event, _ in delivered] == [with_hook.id]
    assert without_hook.id != with_hook.id


def test_a_failed_publish_reports_exactly_that_record(changes: Changes, published: Publishes, cloud: Cloud) -> None:
    ok_first, first = changes.to(JobStatus.QUEUED)
    broken, second = changes.to(JobStatus.RUNNING)
    ok_last, third = changes.to(JobStatus.FAILED)
    published.fail_for = {broken.id}
    assert run(first, second, third) == [second["dynamodb"]["SequenceNumber"]]
    assert [event.data.id for event in published.events()] == [ok_first.id, ok_last.id]
    assert sorted(event.data.id for event, _ in queued_events(cloud)) == sorted([ok_first.id, ok_last.id])

    # The stream retries the failed record; publishing works again.
    published.fail_for = set()
    assert run(second) == []
    assert published.events()[-1].data.id == broken.id


def test_a_batch_where_every_publish_fails_is_retried_whole(changes: Changes, published: Publishes) -> None:
    job, record = changes.to(JobStatus.QUEUED)
    published.fail_for = {job.id}
    assert run(record) == [record["dynamodb"]["SequenceNumber"]]
    assert published.calls == []


# -- items that are not jobs ----------------------------------------------------------------------------


def test_items_that_are_not_jobs_are_ignored(
    changes: Changes, published: Publishes, cloud: Cloud, jobs: JobRepository, keys: KeyRepository
) -> None:
    new_key = keys.create_key("tenant-a")
    tenant = item(cloud, schema.tenant_pk("tenant-a"), schema.TENANT_SK)
    api_key = item(cloud, schema.apikey_pk(hash_key(new_key.api_key)), schema.APIKEY_SK)
    claim = IdempotencyClaim("tenant-a", "key-1", JobRequest(prompt="p").fingerprint())
    jobs.create(build_job(), claim)
    idempotency = item(cloud, claim.pk, schema.IDEMPOTENCY_SK)
    keys.rotate_webhook_secret("tenant-a")
    rotated = item(cloud, schema.tenant_pk("tenant-a"), schema.TENANT_SK)
    records = [
        stream_record(tenant, None, sequence=1),
        stream_record(api_key, None, sequence=2),
        stream_record(idempotency, None, sequence=3),
        stream_record(rotated, tenant, sequence=4),
    ]
    assert run(*records) == []
    assert published.calls == []


def test_a_removed_job_is_not_an_event(changes: Changes, published: Publishes) -> None:
    job, last = changes.to(JobStatus.SUCCEEDED)
    removed = stream_record(last["dynamodb"]["NewImage"], last["dynamodb"]["NewImage"], sequence=999)
    removed["eventName"] = "REMOVE"
    del removed["dynamodb"]["NewImage"]  # a TTL expiry: only the old image
    assert run(removed) == []
    assert published.calls == []
    assert job.status is JobStatus.SUCCEEDED
