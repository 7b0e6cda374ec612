"""The invariant checker itself: it passes finished jobs as they are, and names each kind of damage done to them
behind the system's back (a second stored copy, a half-finished upload, an event under a second id, a write
to a finished job, a wrong ending)."""

from __future__ import annotations

import json

import pytest

from shared.repository import schema
from shared.repository.codec import to_attributes
from tests.reliability.harness import Rig, tagged
from tests.reliability.invariants import Expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_checker_passes_clean_jobs_and_names_every_kind_of_damage(system: Rig) -> None:
    jobs = system.submit_all([{"provider": "aimlapi", "prompt": tagged(f"checked {index}")} for index in range(6)])
    ids = [job["id"] for job in jobs]
    finished = system.wait_terminal(ids)
    clean = system.check({job_id: Expect("succeeded") for job_id in ids})
    assert clean.ok
    assert all(found.event_ids == found.deliveries >= 3 for found in clean.jobs.values())

    s3, sns = system.stack.aws.client("s3"), system.stack.aws.client("sns")
    stored_twice, half_uploaded, renamed_event, written_after, vanished, untouched = ids
    key = finished[stored_twice].outputs[0].key
    second_copy = b"\x00\x00\x00\x08ftypagain"
    s3.put_object(Bucket=system.bucket, Key=key, Body=second_copy)
    prefix = f"jobs/{system.key.tenant}/{half_uploaded}/"
    s3.create_multipart_upload(Bucket=system.bucket, Key=f"{prefix}output-0.mp4")

    events = [e for e in system.settled_events() if e["data"]["id"] == renamed_event]
    succeeded = next(e for e in events if e["type"] == "job.succeeded")
    sns.publish(TopicArn=system.stack.outputs["TopicArn"], Message=json.dumps({**succeeded, "id": "evt_" + "0" * 32}))

    system.stack.aws.client("dynamodb").update_item(
        TableName=system.stack.table_name,
        Key=to_attributes({schema.PK: schema.job_pk(written_after), schema.SK: schema.JOB_SK}),
        UpdateExpression="SET progress = :p",
        ExpressionAttributeValues={":p": {"N": "42"}},
    )
    s3.delete_object(Bucket=system.bucket, Key=finished[vanished].outputs[0].key)

    findings = system.findings(
        {
            stored_twice: Expect("succeeded"),
            half_uploaded: Expect("succeeded"),
            renamed_event: Expect("succeeded"),
            written_after: Expect("succeeded"),
            vanished: Expect("succeeded"),
            untouched: Expect("failed", error="generation_failed", completed_by="callback"),
        }
    )
    problems = {job_id: found.problems for job_id, found in findings.jobs.items()}
    assert problems[stored_twice] == [
        f"{key} was stored 2 times",
        f"{key} sha256 tag None, recorded {finished[stored_twice].outputs[0].sha256}",
        f"{key} holds {len(second_copy)} bytes that do not match the recorded size or sha256",
    ]
    assert problems[half_uploaded] == [f"multipart uploads left open: ['{prefix}output-0.mp4']"]
    assert problems[renamed_event] == [
        "job.succeeded published under 2 event ids",
        f"event evt_{'0' * 32} (job.succeeded) matches no stored status change",
    ]
    assert problems[written_after] == ["1 writes after the job ended"]
    assert problems[vanished] == [
        f"live objects [] differ from the recorded outputs ['{finished[vanished].outputs[0].key}']",
    ]
    assert problems[untouched] == [
        "status succeeded, expected failed",
        "error code None, expected generation_failed",
        "completed by poll, expected callback",
    ]
    with pytest.raises(AssertionError, match="reliability invariants broken"):
        findings.require()
