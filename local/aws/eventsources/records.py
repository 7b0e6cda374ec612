"""Records as Lambda hands them to a function: DynamoDB stream records and SQS messages.

boto3 gives typed values (bytes, datetimes); a Lambda event is JSON, so binary attributes become base64
strings and the stream record's creation time becomes epoch seconds.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

STREAM_EVENT_SOURCE = "aws:dynamodb"
QUEUE_EVENT_SOURCE = "aws:sqs"


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def _b64(value: bytes | bytearray) -> str:
    return base64.b64encode(value).decode("ascii")


def json_attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute value from boto3's low-level form into the form a stream event carries."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": _b64(inner) if isinstance(inner, bytes | bytearray) else inner}
    if kind == "BS":
        return {"BS": [_b64(item) if isinstance(item, bytes | bytearray) else item for item in inner]}
    if kind == "M":
        return {"M": json_image(inner)}
    if kind == "L":
        return {"L": [json_attribute_value(item) for item in inner]}
    return {kind: inner}


def json_image(image: dict[str, Any]) -> dict[str, Any]:
    return {name: json_attribute_value(value) for name, value in image.items()}


def stream_event_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One `Records[]` entry of Lambda's DynamoDB stream event, from a `GetRecords` record."""
    change = raw["dynamodb"]
    created = change.get("ApproximateCreationDateTime")
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": int(created.timestamp()) if isinstance(created, datetime) else created,
        "Keys": json_image(change["Keys"]),
        "SequenceNumber": change["SequenceNumber"],
        "SizeBytes": change["SizeBytes"],
        "StreamViewType": change["StreamViewType"],
    }
    for image in ("NewImage", "OldImage"):
        if image in change:
            dynamodb[image] = json_image(change[image])
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": STREAM_EVENT_SOURCE,
        "awsRegion": raw.get("awsRegion") or region_of(stream_arn),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # TTL deletions carry the DynamoDB service as the principal
        record["userIdentity"] = raw["userIdentity"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [_b64(item) for item in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def queue_event_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One `Records[]` entry of Lambda's SQS event, from a `ReceiveMessage` message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": QUEUE_EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": region_of(queue_arn),
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record
