"""What must hold for every job after any scenario, checked from the system's own records.

`check_jobs` reads, for each job named:
- the stored job: terminal, the expected status, error code and outputs;
- the table's stream (the outbox): every write of the job, each status change one the job state machine
  allows, no status entered twice, nothing written after the job ended, the last image equal to the item;
- the SNS events (collected through an SQS subscription): exactly one event id per stored status change,
  equal to the id derived from that change; repeated deliveries of one id identical; no id for a change
  that was not stored;
- S3: exactly the recorded outputs live under the job's prefix, each with one version, its sha256 tag,
  size and content equal to the record; nothing live for a job that did not succeed; no object ever
  stored twice; no multipart upload left open;
- the provider emulator: the task behind the job exists at that provider and points its callbacks at
  this job; a succeeded job archived exactly the bytes that task served.

`item_unchanged` compares raw items for requests that must not change a job.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.provider_emulator.media import result_file
from local.provider_emulator.tasks import Phase
from local.system import LocalSystem
from shared.lifecycle import can_transition
from shared.models.common import JobStatus
from shared.models.events import event_id
from shared.models.job import AttemptOutcome, ErrorCode, JobRecord
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.repository.jobs import JobRepository
from shared.services.archive import SHA256_TAG, output_key


@dataclass(frozen=True)
class Expect:
    """What a job must have ended as. `None` fields are not checked, except as the rules below say.

    A succeeded job has no error and, unless `outputs` says otherwise, as many outputs as it asked for;
    any other job has an error and no outputs.
    """

    status: JobStatus | str
    error: ErrorCode | str | None = None
    outputs: int | None = None
    completed_by: str | None = None
    provider: str | None = None
    provider_task: bool | None = None  # True: a task at the provider is recorded; False: none is


@dataclass(frozen=True)
class StatusChange:
    """One stored write of a job that changed its status (or created it), read from the table's stream."""

    sequence: int
    version: int
    old: JobStatus | None
    new: JobStatus
    updated_at: str


@dataclass
class StreamHistory:
    """A job's stream records, in order: every image written, and the status changes among them."""

    images: list[dict[str, Any]] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    writes_after_end: int = 0


@dataclass
class JobFindings:
    job_id: str
    status: str | None = None
    event_ids: int = 0
    deliveries: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Findings:
    jobs: dict[str, JobFindings]

    @property
    def problems(self) -> list[str]:
        return [f"{job_id}: {problem}" for job_id, found in self.jobs.items() for problem in found.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def repeated_deliveries(self) -> int:
        """Event deliveries beyond the first of each id (allowed: delivery is at least once)."""
        return sum(found.deliveries - found.event_ids for found in self.jobs.values())

    def require(self) -> Findings:
        if self.problems:
            raise AssertionError("reliability invariants broken:\n  " + "\n  ".join(self.problems))
        return self


def check_jobs(stack: LocalSystem, expected: Mapping[str, Expect], events: Iterable[Mapping[str, Any]]) -> Findings:
    """Check every job in `expected` against the stored job, the stream, the events, S3 and the emulator."""
    by_job: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_job[str(event["data"]["id"])].append(event)
    history = read_stream(stack, set(expected))
    open_uploads = _open_multipart_keys(stack)
    findings = Findings(jobs={})
    for job_id, expect in expected.items():
        found = JobFindings(job_id)
        findings.jobs[job_id] = found
        job = JobRepository(stack.table_name, stack.aws.client("dynamodb")).get(job_id)
        if job is None:
            found.problems.append("no stored job")
            continue
        found.status = job.status.value
        found.problems += _check_record(job, expect)
        found.problems += _check_stream(stack, job, history.get(job_id, StreamHistory()))
        found.problems += _check_events(job, history.get(job_id, StreamHistory()), by_job.get(job_id, []), found)
        found.problems += _check_storage(stack, job, open_uploads)
        found.problems += _check_provider_task(stack, job)
    return findings


def item_unchanged(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The attributes a request changed on a raw item (empty when the item is byte-for-byte the same)."""
    names = sorted(set(before) | set(after))
    canonical = lambda item, name: json.dumps(item.get(name), sort_keys=True)  # noqa: E731
    return [name for name in names if canonical(before, name) != canonical(after, name)]


# -- the stored job ---------------------------------------------------------------------------------


def _check_record(job: JobRecord, expect: Expect) -> list[str]:
    problems: list[str] = []
    want = JobStatus(expect.status)
    if job.status is not want:
        detail = f" ({job.error.code.value}: {job.error.message})" if job.error else ""
        problems.append(f"status {job.status.value}, expected {want.value}{detail}")
    if not job.terminal:
        return problems
    return problems + _check_outcome(job, expect) + _check_provenance(job, expect)


def _check_outcome(job: JobRecord, expect: Expect) -> list[str]:
    problems: list[str] = []
    if job.status is JobStatus.SUCCEEDED and job.error is not None:
        problems.append(f"succeeded with an error recorded: {job.error.code.value}")
    if job.status is not JobStatus.SUCCEEDED and job.error is None:
        problems.append(f"{job.status.value} without an error")
    if expect.error is not None and (job.error is None or job.error.code != ErrorCode(expect.error)):
        got = job.error.code.value if job.error else None
        problems.append(f"error code {got}, expected {ErrorCode(expect.error).value}")
    wanted_outputs = expect.outputs
    if wanted_outputs is None:
        wanted_outputs = job.request.num_outputs if job.status is JobStatus.SUCCEEDED else 0
    if len(job.outputs) != wanted_outputs:
        problems.append(f"{len(job.outputs)} outputs recorded, expected {wanted_outputs}")
    if job.status is not JobStatus.SUCCEEDED and job.outputs:
        problems.append(f"{job.status.value} but outputs are recorded")
    return problems


def _check_provenance(job: JobRecord, expect: Expect) -> list[str]:
    problems: list[str] = []
    if expect.completed_by is not None and job.completed_by != expect.completed_by:
        problems.append(f"completed by {job.completed_by}, expected {expect.completed_by}")
    if expect.provider is not None and job.provider != expect.provider:
        problems.append(f"provider {job.provider}, expected {expect.provider}")
    if expect.provider_task is True and job.provider_task_id is None:
        problems.append("no provider task recorded")
    if expect.provider_task is False and job.provider_task_id is not None:
        problems.append(f"a provider task is recorded ({job.provider_task_id}), expected none")
    accepted = [a for a in job.attempts if a.outcome is AttemptOutcome.ACCEPTED]
    if len(accepted) > 1:
        problems.append(f"{len(accepted)} accepted submit attempts")
    if accepted and accepted[0].provider != job.provider:
        problems.append(f"accepted by {accepted[0].provider} but recorded on {job.provider}")
    return problems


# -- the table's stream -----------------------------------------------------------------------------


def read_stream(stack: LocalSystem, job_ids: set[str]) -> dict[str, StreamHistory]:
    """Every stream record of the given jobs, from the start of the table's stream."""
    dynamodb, streams = stack.aws.client("dynamodb"), stack.aws.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=stack.table_name)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not answer["Records"]:
                break
            records.extend(answer["Records"])
            iterator = answer.get("NextShardIterator")
    records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))

    history: dict[str, StreamHistory] = defaultdict(StreamHistory)
    for record in records:
        new = record["dynamodb"].get("NewImage")
        if not new or new.get(schema.ENTITY, {}).get("S") != "job":
            continue
        job_id = new["id"]["S"]
        if job_id not in job_ids:
            continue
        old = record["dynamodb"].get("OldImage")
        entry = history[job_id]
        if entry.images and JobStatus(entry.images[-1]["status"]["S"]).terminal:
            entry.writes_after_end += 1
        entry.images.append(new)
        old_status = JobStatus(old["status"]["S"]) if old else None
        new_status = JobStatus(new["status"]["S"])
        if old_status is not new_status:
            entry.changes.append(
                StatusChange(
                    sequence=int(record["dynamodb"]["SequenceNumber"]),
                    version=int(new["version"]["N"]),
                    old=old_status,
                    new=new_status,
                    updated_at=new["updated_at"]["S"],
                )
            )
    return dict(history)


def _check_stream(stack: LocalSystem, job: JobRecord, history: StreamHistory) -> list[str]:
    problems: list[str] = []
    if not history.changes:
        return ["no stream record"]
    first = history.changes[0]
    if first.old is not None or first.new is not JobStatus.SUBMITTING:
        problems.append(f"first stored change is {first.old} -> {first.new.value}, not the creation in submitting")
    seen: set[JobStatus] = set()
    for change in history.changes:
        if change.new in seen:
            problems.append(f"status {change.new.value} entered twice")
        seen.add(change.new)
        if change.old is not None and not can_transition(change.old, change.new):
            problems.append(f"disallowed change {change.old.value} -> {change.new.value} (version {change.version})")
    if history.writes_after_end:
        problems.append(f"{history.writes_after_end} writes after the job ended")
    if history.changes[-1].new is not job.status:
        problems.append(f"last stored change is to {history.changes[-1].new.value}, the job is {job.status.value}")
    key = to_attributes({schema.PK: schema.job_pk(job.id), schema.SK: schema.JOB_SK})
    item = stack.aws.client("dynamodb").get_item(TableName=stack.table_name, Key=key, ConsistentRead=True)["Item"]
    if item_unchanged(history.images[-1], item):
        problems.append("the stored item differs from the last stream image (a write left no stream record)")
    return problems


# -- events -----------------------------------------------------------------------------------------


def _check_events(
    job: JobRecord, history: StreamHistory, events: Sequence[Mapping[str, Any]], found: JobFindings
) -> list[str]:
    deliveries: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        deliveries[str(event["id"])].append(event)
    found.event_ids, found.deliveries = len(deliveries), len(events)
    return (
        _check_deliveries(deliveries)
        + _check_events_match_changes(job, history, deliveries)
        + _check_final_event(job, deliveries)
    )


def _check_deliveries(deliveries: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    """Repeats of one id are the same event; one status is published under one id."""
    problems: list[str] = []
    by_type: dict[str, set[str]] = defaultdict(set)
    for eid, copies in deliveries.items():
        if any(_canonical(copy) != _canonical(copies[0]) for copy in copies[1:]):
            problems.append(f"event {eid} delivered {len(copies)} times with different contents")
        event = copies[0]
        if event["type"] != f"job.{event['data']['status']}":
            problems.append(f"event {eid} is {event['type']} for a job in {event['data']['status']}")
        by_type[str(event["type"])].add(eid)
    for kind, ids in by_type.items():
        if len(ids) > 1:
            problems.append(f"{kind} published under {len(ids)} event ids")
    return problems


def _check_events_match_changes(
    job: JobRecord, history: StreamHistory, deliveries: Mapping[str, list[Mapping[str, Any]]]
) -> list[str]:
    """Each stored status change (but the internal `submitting`) has its event, and no event lacks a change."""
    problems: list[str] = []
    published = [change for change in history.changes if change.new is not JobStatus.SUBMITTING]
    wanted = {event_id(job.id, change.version, change.new): change for change in published}
    for eid, change in wanted.items():
        if eid not in deliveries:
            problems.append(f"no event for the change to {change.new.value} (version {change.version})")
            continue
        event = deliveries[eid][0]
        if event["type"] != f"job.{change.new.value}" or event["data"]["updated_at"] != _iso_z(change.updated_at):
            problems.append(f"event {eid} does not describe the stored change to {change.new.value}")
    problems += [
        f"event {eid} ({copies[0]['type']}) matches no stored status change"
        for eid, copies in deliveries.items()
        if eid not in wanted
    ]
    return problems


def _check_final_event(job: JobRecord, deliveries: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    final = next((copies[0] for copies in deliveries.values() if copies[0]["type"] == f"job.{job.status}"), None)
    if final is None:
        return []  # reported as a missing event for the change
    problems: list[str] = []
    recorded = [(o.bytes, o.sha256) for o in job.outputs]
    announced = [(o["bytes"], o["sha256"]) for o in final["data"]["outputs"]]
    if recorded != announced:
        problems.append(f"the final event announces outputs {announced}, the job records {recorded}")
    if any("url" in output for output in final["data"]["outputs"]):
        problems.append("an event carries a download URL")
    return problems


def _canonical(event: Mapping[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def _iso_z(stored: str) -> str:
    """A stored timestamp as events print it (`Z` for UTC)."""
    return stored.replace("+00:00", "Z")


# -- S3 ---------------------------------------------------------------------------------------------


def _open_multipart_keys(stack: LocalSystem) -> list[str]:
    s3 = stack.aws.client("s3")
    uploads = s3.list_multipart_uploads(Bucket=stack.outputs["BucketName"]).get("Uploads", [])
    return [str(upload["Key"]) for upload in uploads]


def _object_versions(stack: LocalSystem, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    s3 = stack.aws.client("s3")
    versions: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.outputs["BucketName"], Prefix=prefix):
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers


def _check_storage(stack: LocalSystem, job: JobRecord, open_uploads: list[str]) -> list[str]:
    problems: list[str] = []
    bucket = stack.outputs["BucketName"]
    s3 = stack.aws.client("s3")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problems.append("the videos bucket is not versioned, so a second upload of an output would go unseen")
    prefix = f"jobs/{job.tenant_id}/{job.id}/"
    versions, markers = _object_versions(stack, prefix)
    per_key: dict[str, int] = defaultdict(int)
    for version in versions:
        per_key[version["Key"]] += 1
    for key, count in sorted(per_key.items()):
        if count > 1:
            problems.append(f"{key} was stored {count} times")
    live = {entry["Key"] for entry in versions if entry["IsLatest"]}
    recorded = {output.key for output in job.outputs}
    if live != recorded:
        problems.append(f"live objects {sorted(live)} differ from the recorded outputs {sorted(recorded)}")
    leftover = [key for key in open_uploads if key.startswith(prefix)]
    if leftover:
        problems.append(f"multipart uploads left open: {leftover}")
    for index, output in enumerate(job.outputs):
        if output.key != output_key(job, index):
            problems.append(f"output {index} is stored at {output.key}, not {output_key(job, index)}")
        if output.key not in live:
            continue
        if any(marker["Key"] == output.key for marker in markers):
            problems.append(f"{output.key} has a delete marker")
        tags = s3.get_object_tagging(Bucket=bucket, Key=output.key)["TagSet"]
        tag = next((t["Value"] for t in tags if t["Key"] == SHA256_TAG), None)
        if tag != output.sha256:
            problems.append(f"{output.key} sha256 tag {tag}, recorded {output.sha256}")
        body = s3.get_object(Bucket=bucket, Key=output.key)["Body"].read()
        if len(body) != output.bytes or hashlib.sha256(body).hexdigest() != output.sha256:
            problems.append(f"{output.key} holds {len(body)} bytes that do not match the recorded size or sha256")
    return problems


# -- the provider ---------------------------------------------------------------------------------


def _check_provider_task(stack: LocalSystem, job: JobRecord) -> list[str]:
    if job.provider_task_id is None:
        return []
    assert stack.emulator is not None
    task = stack.emulator.task(job.provider_task_id)
    if task is None:
        return [f"the provider has no task {job.provider_task_id}"]
    problems: list[str] = []
    if task.provider != job.provider:
        problems.append(f"task {task.task_id} is at {task.provider}, the job says {job.provider}")
    if task.callback_url is not None and f"/callbacks/{task.provider}/{job.id}?" not in task.callback_url:
        problems.append(f"task {task.task_id} calls back to another job: {task.callback_url}")
    if job.status is JobStatus.SUCCEEDED:
        if task.state is not Phase.SUCCEEDED:
            problems.append(f"succeeded, but the provider's task is {task.state.value}")
        if list(job.result_urls) != task.result_urls:
            problems.append("the archived result URLs are not the ones the provider's task served")
        for index, output in enumerate(job.outputs):
            served = hashlib.sha256()
            for chunk in result_file(task.task_id, index, task.result_bytes).chunks():
                served.update(chunk)
            if served.hexdigest() != output.sha256:
                problems.append(f"output {index} is not the provider's result {index} byte for byte")
    if job.error is not None and job.error.code is ErrorCode.GENERATION_FAILED and task.state is not Phase.FAILED:
        problems.append(f"failed as generation_failed, but the provider's task is {task.state.value}")
    return problems
