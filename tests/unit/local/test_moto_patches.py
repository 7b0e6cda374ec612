"""A failed DynamoDB transaction on moto leaves no trace: items as they were, no stream record, same stream."""

from __future__ import annotations

from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError

from local.aws.moto_patches import missing_internals
from shared.repository.schema import PK, SK
from tests.fixtures.aws import TABLE


def item(pk: str, **attributes: str) -> dict[str, Any]:
    return {PK: {"S": pk}, SK: {"S": "meta"}, **{name: {"S": value} for name, value in attributes.items()}}


def stream_records(dynamodb: Any) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def failing_transaction(dynamodb: Any) -> None:
    """Writes a new item and changes an existing one, then fails its third condition."""
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("new", state="written")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {PK: {"S": "old"}, SK: {"S": "meta"}},
                        "UpdateExpression": "SET #s = :s",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":s": {"S": "changed"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {PK: {"S": "absent"}, SK: {"S": "meta"}},
                        "ConditionExpression": "attribute_exists(#p)",
                        "ExpressionAttributeNames": {"#p": PK},
                    }
                },
            ]
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_failed_transaction_restores_its_items_and_leaves_no_stream_record(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=item("old", state="original"))
    failing_transaction(dynamodb)

    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={PK: {"S": "new"}, SK: {"S": "meta"}})
    old = dynamodb.get_item(TableName=TABLE, Key={PK: {"S": "old"}, SK: {"S": "meta"}})["Item"]
    assert old["state"] == {"S": "original"}
    assert [r["eventName"] for r in stream_records(dynamodb)] == ["INSERT"]


def test_an_iterator_opened_before_a_failed_transaction_reads_on_past_it(dynamodb: Any) -> None:
    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    dynamodb.put_item(TableName=TABLE, Item=item("old", state="original"))
    opened = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    answer = streams.get_records(ShardIterator=opened["ShardIterator"])
    assert len(answer["Records"]) == 1

    failing_transaction(dynamodb)
    dynamodb.put_item(TableName=TABLE, Item=item("after", state="real"))

    # A reader that kept its iterator sees the write that happened, not the ones rolled back.
    later = streams.get_records(ShardIterator=answer["NextShardIterator"])["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"][PK]["S"]) for r in later] == [("INSERT", "after")]


def test_a_successful_transaction_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": TABLE, "Item": item(name, state="ok")}} for name in ("a", "b")]
    )
    assert [r["dynamodb"]["Keys"][PK]["S"] for r in stream_records(dynamodb)] == ["a", "b"]


def test_the_installed_moto_still_has_everything_local_mode_patches_or_reads() -> None:
    missing = missing_internals()
    assert not missing, (
        f"moto {moto.__version__} no longer has what local/aws/moto_patches.py relies on: {', '.join(missing)}. "
        "Pin the previous moto in requirements/dev.txt or adapt moto_patches.py to the new internals."
    )


def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    monkeypatch.delattr(DynamoDBStreamsBackend, "get_records")
    assert missing_internals() == ["moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_records"]
