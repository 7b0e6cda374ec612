"""moto's server made cheaper under load answers exactly what moto's own code answers."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.responses import BaseResponse

from local.aws import moto_speedups
from local.aws.moto_speedups import fast_json_body, missing_internals, speed_up_moto_server

TABLE = "speedups"
EVERY_TYPE = {
    "pk": {"S": "job#1"},
    "sk": {"S": "meta"},
    "count": {"N": "12.50"},
    "blob": {"B": b"\x00\x01binary\xff"},
    "yes": {"BOOL": True},
    "nothing": {"NULL": True},
    "map": {"M": {"inner": {"S": "value"}, "list": {"L": [{"N": "1"}, {"S": "two"}]}}},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"one", b"two"]},
}
NEW_YEAR = 1767225600  # 2026-01-01T00:00:00Z
KEY = {"pk": {"S": "job#1"}, "sk": {"S": "meta"}}


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every response written twice, by the shortcut and by moto's serializer, and the two compared."""
    speed_up_moto_server()
    fast = BaseResponse.serialized
    original = fast.__wrapped__  # type: ignore[attr-defined]
    shortcuts: Counter[str] = Counter()

    def both(self: Any, action_result: Any) -> Any:
        ours = fast(self, action_result)
        theirs = original(self, action_result)
        assert ours[0] == theirs[0], self._get_action()
        assert json.loads(ours[2] or "{}") == json.loads(theirs[2] or "{}"), self._get_action()
        assert ours[1].get("Content-Type", "").split(";")[0] == theirs[1].get("Content-Type", "").split(";")[0]
        if fast_json_body(type(self).__name__, self._get_action(), action_result.result) is not None:
            shortcuts[self._get_action()] += 1
        return ours

    monkeypatch.setattr(BaseResponse, "serialized", both)
    with moto_mock():
        yield shortcuts


def moto_mock() -> Any:
    import moto

    return moto.mock_aws()


def test_dynamodb_data_operations_and_stream_records_answer_as_moto_does(compared: Counter[str]) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in (("pk", "HASH"), ("sk", "RANGE"))],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE)
    assert dynamodb.get_item(TableName=TABLE, Key=KEY)["Item"]["blob"] == {"B": b"\x00\x01binary\xff"}
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "absent"}, "sk": {"S": "meta"}})
    dynamodb.get_item(TableName=TABLE, Key=KEY, ProjectionExpression="#c", ExpressionAttributeNames={"#c": "count"})
    dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "job#1"}})
    dynamodb.scan(TableName=TABLE, Limit=1)
    updated = dynamodb.update_item(
        TableName=TABLE, Key=KEY, UpdateExpression="SET #c = #c + :one", ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW",
        ReturnConsumedCapacity="TOTAL",
    )  # fmt: skip
    assert set(updated["Attributes"]) == set(EVERY_TYPE)
    with pytest.raises(ClientError):
        dynamodb.put_item(TableName=TABLE, Item=EVERY_TYPE, ConditionExpression="attribute_not_exists(pk)")
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": TABLE, "Item": {**KEY, "sk": {"S": "other"}}}},
                       {"Update": {"TableName": TABLE, "Key": KEY, "UpdateExpression": "REMOVE #n",
                                   "ExpressionAttributeNames": {"#n": "nothing"}}}]
    )  # fmt: skip
    dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": KEY}}])
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [KEY]}})
    dynamodb.batch_write_item(RequestItems={TABLE: [{"DeleteRequest": {"Key": {**KEY, "sk": {"S": "other"}}}}]})
    dynamodb.delete_item(TableName=TABLE, Key=KEY, ReturnValues="ALL_OLD")

    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "INSERT", "MODIFY", "REMOVE", "REMOVE"]
    assert isinstance(records[0]["dynamodb"]["ApproximateCreationDateTime"], datetime)

    assert set(compared) >= {"PutItem", "GetItem", "Query", "Scan", "UpdateItem", "TransactWriteItems",
                             "TransactGetItems", "BatchGetItem", "BatchWriteItem", "DeleteItem", "GetShardIterator",
                             "GetRecords"}  # fmt: skip


def test_what_is_not_plain_json_is_left_to_moto() -> None:
    assert fast_json_body("DynamoHandler", "DescribeTable", {"Table": {}}) is None  # not a data operation
    assert fast_json_body("SQSResponse", "ReceiveMessage", {}) is None
    assert fast_json_body("DynamoHandler", "GetItem", ValueError("refused")) is None  # errors: moto's shape
    assert fast_json_body("DynamoHandler", "GetItem", {"Item": {"x": {"S": object()}}}) is None
    created = datetime(2026, 1, 1, 0, 0, 1, 234567)
    record = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": created, "Keys": None}}
    written = fast_json_body("DynamoDBStreamsHandler", "GetRecords", {"Records": [record], "Unknown": 1})
    assert written is not None
    assert json.loads(written) == {
        "Records": [{"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": NEW_YEAR + 1.234}}]
    }


def test_a_state_machine_definition_is_parsed_once_into_fresh_components() -> None:
    speed_up_moto_server()
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    first, tree = AmazonStateLanguageParser.parse(definition)
    second, same_tree = AmazonStateLanguageParser.parse(definition)
    assert same_tree is tree
    assert second is not first  # components hold no state from another execution
    with pytest.raises(Exception, match=r"(?i)ASL|syntax"):
        AmazonStateLanguageParser.parse("{not a definition")


def test_installing_twice_wraps_once() -> None:
    speed_up_moto_server()
    wrapped = BaseResponse.serialized
    speed_up_moto_server()
    assert BaseResponse.serialized is wrapped
    assert moto_speedups._installed


def test_moto_still_has_what_the_shortcuts_replace() -> None:
    import moto

    assert missing_internals() == [], f"moto {moto.__version__} moved what local.aws.moto_speedups replaces"


def test_a_step_functions_task_client_is_built_once_per_region_and_role() -> None:
    speed_up_moto_server()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    client_for: Any = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009 (not exported, but what runs)
    role = {"role_arn": "arn:aws:iam::123456789012:role/poller"}
    first = client_for(region="us-east-1", service="lambda", state_credentials=role)
    assert client_for(region="us-east-1", service="lambda", state_credentials=dict(role)) is first
    other_role = {"role_arn": "arn:aws:iam::123456789012:role/other"}
    assert client_for(region="us-east-1", service="lambda", state_credentials=other_role) is not first
    assert client_for(region="eu-west-1", service="lambda", state_credentials=role) is not first


def test_threads_asking_at_once_for_a_missing_entry_load_it_once() -> None:
    loads: list[str] = []
    started = threading.Event()

    @functools.cache
    def slow_model(service: str) -> str:
        loads.append(service)
        started.wait(1)  # every other thread is asking by now; plain functools.cache would load in each
        return f"model of {service}"

    model = moto_speedups._one_load_at_a_time(slow_model)
    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(model, "lambda") for _ in range(8)]
        time.sleep(0.2)
        started.set()
        assert {answer.result() for answer in answers} == {"model of lambda"}
    assert loads == ["lambda"]


def test_service_models_and_routers_are_loaded_at_start_and_shared_by_moto() -> None:
    speed_up_moto_server()
    from moto.core import responses, routing, utils

    for name, modules in (("get_service_model", (utils, responses, routing)), ("get_service_router", (responses,))):
        assert all(getattr(module, name) is getattr(routing, name) for module in modules), name
    moto_speedups.load_service_models(["lambda", "dynamodbstreams"])
    assert set(routing.get_service_router("lambda")._routers) == {"rest-json"}
    assert moto_speedups._output_shape.__wrapped__.cache_info().currsize >= 2  # type: ignore[attr-defined]
