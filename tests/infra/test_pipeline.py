"""The table stream's consumers: which records reach them, and what happens when they fail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def mapping(synth: Synth, function: str) -> dict[str, Any]:
    (props,) = [
        dict(m["Properties"])
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synth.function_id(function)}
    ]
    return props


def matches(pattern: Any, event: Any) -> bool:
    """Lambda event filtering for the pattern forms used here: exact values and anything-but."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    assert isinstance(pattern, list)
    for rule in pattern:
        if isinstance(rule, dict):
            (kind, values), *_ = rule.items()
            assert kind == "anything-but"
            if event not in values:
                return True
        elif rule == event:
            return True
    return False


def record(event_name: str, new: dict[str, str] | None, old: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if new is not None:
        body["NewImage"] = {k: {"S": v} for k, v in new.items()}
    if old is not None:
        body["OldImage"] = {k: {"S": v} for k, v in old.items()}
    return {"eventName": event_name, "dynamodb": body}


def accepts(props: dict[str, Any], event: dict[str, Any]) -> bool:
    return any(matches(json.loads(f["Pattern"]), event) for f in props["FilterCriteria"]["Filters"])


def test_archive_sees_only_jobs_entering_archiving(synth: Synth) -> None:
    props = mapping(synth, "archive")
    job = {"entity": "job"}

    assert accepts(props, record("MODIFY", {**job, "status": "archiving"}, {**job, "status": "running"}))
    assert accepts(props, record("MODIFY", {**job, "status": "archiving"}, {**job, "status": "queued"}))
    # Later writes while archiving, other statuses, inserts, removals and other entities are not its business.
    assert not accepts(props, record("MODIFY", {**job, "status": "archiving"}, {**job, "status": "archiving"}))
    assert not accepts(props, record("MODIFY", {**job, "status": "succeeded"}, {**job, "status": "archiving"}))
    assert not accepts(props, record("INSERT", {**job, "status": "archiving"}))
    assert not accepts(props, record("REMOVE", None, {**job, "status": "archiving"}))
    assert not accepts(props, record("MODIFY", {"entity": "apikey", "status": "archiving"}, {"status": "x"}))


def test_notify_sees_every_job_insert_and_change(synth: Synth) -> None:
    props = mapping(synth, "notify")
    job = {"entity": "job"}

    assert accepts(props, record("INSERT", {**job, "status": "submitting"}))
    assert accepts(props, record("MODIFY", {**job, "status": "queued"}, {**job, "status": "submitting"}))
    assert not accepts(props, record("REMOVE", None, {**job, "status": "succeeded"}))  # TTL expiry
    assert not accepts(props, record("INSERT", {"entity": "apikey"}))
    assert not accepts(props, record("MODIFY", {"entity": "tenant"}, {"entity": "tenant"}))


@pytest.mark.parametrize(("function", "batch_size"), [("archive", 1), ("notify", 100)])
def test_failures_are_bounded_and_end_in_a_dead_letter_queue(synth: Synth, function: str, batch_size: int) -> None:
    props = mapping(synth, function)
    stack = synth.stack
    dlq = {"archive": stack.pipeline.archive_failures, "notify": stack.pipeline.notify_failures}[function]

    assert props["EventSourceArn"] == {"Fn::GetAtt": [synth.logical_id(stack.storage.table), "StreamArn"]}
    assert props["BatchSize"] == batch_size
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 5
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 24 * 3600  # the stream keeps records for 24 hours
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [synth.logical_id(dlq), "Arn"]}}}
    assert props["StartingPosition"] == "TRIM_HORIZON"


@pytest.mark.parametrize("function", ["archive", "notify"])
def test_no_stream_mapping_waits_to_fill_a_batch(synth: Synth, function: str) -> None:
    # A batching window adds its length to the latency of every job change it carries.
    assert "MaximumBatchingWindowInSeconds" not in mapping(synth, function)


def test_archives_run_in_parallel_and_notifications_in_order(synth: Synth) -> None:
    assert mapping(synth, "archive")["ParallelizationFactor"] == 10
    assert mapping(synth, "notify").get("ParallelizationFactor", 1) == 1
