"""The synthesized template's mappings, deployed into moto and driven: each function gets exactly the records
its filter selects. Notify runs its real handler, so its events travel SNS -> the deliveries queue -> deliver."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from local.aws.deploy import StackDeployer
from local.aws.eventsources import EventSources, QueueMapping, StreamMapping, Timing
from local.aws.lambdas import FunctionHost, deployed_functions
from local.aws.moto_server import free_port
from local.aws.template import REGION, Template
from local.synth import asset_archives, synthesize
from shared.models.common import JobStatus
from shared.models.request import JobRequest
from shared.repository.jobs import JobRepository
from shared.repository.keys import KeyRepository
from shared.webhooks.retry import MAX_DELIVERY_ATTEMPTS
from tests.fixtures.jobs import build_job

pytestmark = pytest.mark.slow


class Recorder:
    """Records each event, then hands it to the real handler when there is one."""

    def __init__(self, real: FunctionHost | None = None) -> None:
        self.real = real
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self.events.append(copy.deepcopy(event))
        return self.real.invoke(event) if self.real else None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


@dataclass
class Functions:
    by_name: dict[str, Recorder]

    def resolve(self, name_or_arn: str) -> Recorder:
        return self.by_name[name_or_arn.split(":function:", 1)[-1]]


@dataclass
class Deployed:
    deployer: StackDeployer
    sources: EventSources
    hosts: dict[str, Recorder]  # by short name: archive, notify, deliver
    clients: dict[str, Any]
    baseline: dict[str, dict[str, int]] | None = None

    def counted_since_baseline(self, counter: str) -> int:
        before = self.baseline or {}
        return sum(
            stats[counter] - before.get(name, {}).get(counter, 0) for name, stats in self.sources.summary().items()
        )

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.deployer.physical[self._logical("AWS::DynamoDB::Table")], self.clients["dynamodb"])

    def _logical(self, resource_type: str) -> str:
        name, _ = self.deployer.template.one(resource_type)
        return name


def function_host(template: Template, deployer: StackDeployer, logical_id: str) -> FunctionHost:
    spec = next(spec for spec in deployed_functions(template, deployer) if spec.logical_id == logical_id)
    return FunctionHost(spec, {"KR_LOCAL_MODE": "true"})


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    template = synthesize()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            made[service] = boto3.client(service, endpoint_url=endpoint, region_name=REGION)
        return made[service]

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", endpoint)  # for the real notify handler's own clients
        try:
            deployer = StackDeployer(template, clients)
            deployer.deploy(asset_archives(template))
            hosts: dict[str, Recorder] = {}
            by_name: dict[str, Recorder] = {}
            for logical_id, resource in template.of_type("AWS::Lambda::Function").items():
                short = resource["Properties"]["Handler"].split(".")[1]
                real = function_host(template, deployer, logical_id) if short == "notify" else None
                hosts[short] = by_name[deployer.physical[logical_id]] = Recorder(real)
            sources = EventSources.from_template(
                template, deployer.resolve, Functions(by_name), clients, Timing(poll_interval=0.05, retry_backoff=0.05)
            )
            sources.start()
            try:
                yield Deployed(deployer, sources, hosts, made)
            finally:
                assert sources.stop()
        finally:
            httpx.post(f"{endpoint}/moto-api/reset", timeout=10)
            server.stop()


@pytest.fixture
def system(deployed: Deployed) -> Deployed:
    assert deployed.sources.wait_idle(20)
    for host in deployed.hosts.values():
        host.clear()
    deployed.baseline = deployed.sources.summary()
    return deployed


def statuses(records: list[dict[str, Any]], image: str) -> list[str | None]:
    return [r["dynamodb"].get(image, {}).get("status", {}).get("S") for r in records]


def test_every_mapping_of_the_template_is_driven(system: Deployed) -> None:
    deployed = system
    mappings = deployed.sources.mappings
    assert len(mappings) == 3
    archive = deployed.sources.mapping("PipelineArchiveFunction")
    notify = deployed.sources.mapping("PipelineNotifyFunction")
    deliver = deployed.sources.mapping("NotificationsDeliverFunction")
    assert isinstance(archive, StreamMapping)
    assert isinstance(notify, StreamMapping)
    assert isinstance(deliver, QueueMapping)
    assert archive.destination is not None
    failures_queue, _ = deployed.deployer.template.one("AWS::SQS::Queue", "PipelineArchiveFailures")
    assert archive.destination.arn == deployed.deployer.att(failures_queue, "Arn")
    assert (archive.batch_size, archive.lanes_per_shard, archive.bisect) == (1, 10, True)
    assert (notify.batch_size, notify.window) == (100, 0.0)
    # The deployed deliveries queue's RedrivePolicy (which moto applies on receive) dead-letters webhook events.
    assert deliver.max_receive_count == MAX_DELIVERY_ATTEMPTS
    assert all(mapping.running for mapping in mappings)


def test_archive_and_notify_get_exactly_what_their_filters_select(system: Deployed) -> None:
    jobs = system.jobs
    request = JobRequest(prompt="a fox in the snow", webhook_url="https://hooks.example.com/kling")
    job = jobs.create(build_job(request=request)).job
    job = jobs.transition(job, JobStatus.QUEUED, provider_task_id="task-1")
    job = jobs.transition(job, JobStatus.RUNNING)
    job = jobs.transition(job, JobStatus.ARCHIVING)
    job = jobs.update(job, progress=100)  # a write while archiving: not a second archive request
    job = jobs.transition(job, JobStatus.SUCCEEDED)
    quiet = jobs.create(build_job()).job  # no webhook_url: its events are not for the deliveries queue
    jobs.transition(quiet, JobStatus.FAILED)
    KeyRepository(jobs.table_name, system.clients["dynamodb"]).create_key("tenant-a")  # not a job
    assert system.sources.wait_idle(20)

    archive = system.hosts["archive"].records
    assert len(archive) == 1
    (entering,) = archive
    assert entering["eventName"] == "MODIFY"
    assert entering["dynamodb"]["NewImage"]["id"] == {"S": job.id}
    assert statuses(archive, "NewImage") == ["archiving"]
    assert statuses(archive, "OldImage") == ["running"]
    assert all(len(event["Records"]) == 1 for event in system.hosts["archive"].events)  # BatchSize 1

    notify = system.hosts["notify"].records
    ours = [r for r in notify if r["dynamodb"]["NewImage"]["id"]["S"] == job.id]
    assert [r["eventName"] for r in ours] == ["INSERT"] + ["MODIFY"] * 5
    assert statuses(ours, "NewImage") == ["submitting", "queued", "running", "archiving", "archiving", "succeeded"]
    assert len(notify) == len(ours) + 2  # the other job's insert and failure; never the API key or tenant items
    assert all(r["dynamodb"]["NewImage"]["entity"] == {"S": "job"} for r in notify)
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in notify]
    assert sequences == sorted(sequences)

    # notify published one event per status change; only the job with a webhook reached deliver.
    delivered = [json.loads(r["body"]) for r in system.hosts["deliver"].records]
    assert sorted(event["type"] for event in delivered) == sorted(
        ["job.queued", "job.running", "job.archiving", "job.succeeded"]
    )
    assert {event["data"]["id"] for event in delivered} == {job.id}
    for record in system.hosts["deliver"].records:
        assert record["messageAttributes"]["tenant_id"]["stringValue"] == "tenant-a"
        assert (
            record["eventSourceARN"]
            == system.sources.mapping("NotificationsDeliverFunction").properties.event_source_arn
        )

    assert system.counted_since_baseline("records") == len(archive) + len(notify) + len(delivered)
    assert system.counted_since_baseline("failures") == 0
    assert system.counted_since_baseline("poller_errors") == 0


def test_the_mappings_are_driven_here_not_by_moto(system: Deployed) -> None:
    """moto would consume (and empty) the stream itself; the deployer leaves every mapping to the drivers."""
    deployer = system.deployer
    mappings = deployer.template.of_type("AWS::Lambda::EventSourceMapping")
    assert mappings
    assert set(mappings) <= set(deployer.served_locally())
    assert deployer.clients("lambda").list_event_source_mappings()["EventSourceMappings"] == []
