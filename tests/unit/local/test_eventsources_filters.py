"""Lambda event filtering against the documented filter-rule examples and the template's own patterns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.aws.eventsources.filters import FilterSet, PatternError, compile_pattern, matches

# The two patterns the synthesized template gives the archive and notify mappings.
ARCHIVE_PATTERN = (
    '{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"entity":{"S":["job"]},"status":{"S":["archiving"]}},'
    '"OldImage":{"status":{"S":[{"anything-but":["archiving"]}]}}}}'
)
NOTIFY_PATTERN = '{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"entity":{"S":["job"]}}}}'


def change(event_name: str, new: dict[str, str] | None, old: dict[str, str] | None = None) -> dict[str, Any]:
    """A stream record in Lambda's event shape, images given as plain string attributes."""
    dynamodb: dict[str, Any] = {"Keys": {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}}, "SequenceNumber": "1"}
    if new is not None:
        dynamodb["NewImage"] = {name: {"S": value} for name, value in new.items()}
    if old is not None:
        dynamodb["OldImage"] = {name: {"S": value} for name, value in old.items()}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


# -- the template's patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "selected"),
    [
        (change("MODIFY", {"entity": "job", "status": "archiving"}, {"entity": "job", "status": "running"}), True),
        (change("MODIFY", {"entity": "job", "status": "archiving"}, {"entity": "job", "status": "queued"}), True),
        # a later write while archiving (progress, attempts) is not a new archive request
        (change("MODIFY", {"entity": "job", "status": "archiving"}, {"entity": "job", "status": "archiving"}), False),
        (change("MODIFY", {"entity": "job", "status": "succeeded"}, {"entity": "job", "status": "archiving"}), False),
        # an insert straight into archiving has no old image, so no old status that is "anything but"
        (change("INSERT", {"entity": "job", "status": "archiving"}), False),
        (change("MODIFY", {"entity": "apikey", "status": "archiving"}, {"entity": "apikey", "status": "x"}), False),
        (change("REMOVE", None, {"entity": "job", "status": "running"}), False),
    ],
)
def test_archive_pattern_selects_entering_archiving_only(record: dict[str, Any], selected: bool) -> None:
    assert matches(ARCHIVE_PATTERN, record) is selected


@pytest.mark.parametrize(
    ("record", "selected"),
    [
        (change("INSERT", {"entity": "job", "status": "submitting"}), True),
        (change("MODIFY", {"entity": "job", "status": "queued"}, {"entity": "job", "status": "submitting"}), True),
        (change("MODIFY", {"entity": "job", "status": "queued"}, {"entity": "job", "status": "queued"}), True),
        (change("REMOVE", None, {"entity": "job", "status": "succeeded"}), False),
        (change("INSERT", {"entity": "apikey"}), False),
        (change("INSERT", {"entity": "tenant"}), False),
        (change("INSERT", {"status": "queued"}), False),
    ],
)
def test_notify_pattern_selects_job_inserts_and_changes(record: dict[str, Any], selected: bool) -> None:
    assert matches(NOTIFY_PATTERN, record) is selected


# -- the documented filter rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "record", "expected"),
    [
        # Null: only a null value, not a missing field or an empty string
        ({"UserID": [None]}, {"UserID": None}, True),
        ({"UserID": [None]}, {}, False),
        ({"UserID": [None]}, {"UserID": ""}, False),
        # Empty
        ({"LastName": [""]}, {"LastName": ""}, True),
        ({"LastName": [""]}, {"LastName": None}, False),
        # Equals
        ({"Name": ["Alice"]}, {"Name": "Alice"}, True),
        ({"Name": ["Alice"]}, {"Name": "alice"}, False),
        # Equals (ignore case)
        ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
        ({"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "Bob"}, False),
        # And
        ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Monday"}, True),
        ({"Location": ["New York"], "Day": ["Monday"]}, {"Location": "New York", "Day": "Tuesday"}, False),
        # Or
        ({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Debit"}, True),
        ({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Cash"}, False),
        # Or (multiple fields)
        ({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}, {"Location": "Boston", "Day": "Monday"}, True),
        ({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}, {"Location": "Boston", "Day": "Friday"}, False),
        # Not
        ({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Sunny"}, True),
        ({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Raining"}, False),
        ({"Weather": [{"anything-but": "Raining"}]}, {"Weather": "Raining"}, False),
        ({"Weather": [{"anything-but": ["Raining"]}]}, {}, False),
        ({"Weather": [{"anything-but": {"prefix": "Rain"}}]}, {"Weather": "Rainy"}, False),
        ({"Weather": [{"anything-but": {"prefix": "Rain"}}]}, {"Weather": "Snowy"}, True),
        # Numeric (equals)
        ({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100}, True),
        ({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.0}, True),
        ({"Price": [{"numeric": ["=", 100]}]}, {"Price": "100"}, False),
        # Numeric (range)
        ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20}, True),
        ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 10}, False),
        ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20.5}, False),
        ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": True}, False),
        # Exists / does not exist (leaves only)
        ({"ProductName": [{"exists": True}]}, {"ProductName": "Widget"}, True),
        ({"ProductName": [{"exists": True}]}, {"ProductName": None}, True),
        ({"ProductName": [{"exists": True}]}, {}, False),
        ({"ProductName": [{"exists": False}]}, {}, True),
        ({"ProductName": [{"exists": False}]}, {"ProductName": "Widget"}, False),
        ({"ProductName": [{"exists": True}]}, {"ProductName": {"S": "Widget"}}, False),
        # Begins with / ends with
        ({"Region": [{"prefix": "us-"}]}, {"Region": "us-east-1"}, True),
        ({"Region": [{"prefix": "us-"}]}, {"Region": "eu-west-1"}, False),
        ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.png"}, True),
        ({"FileName": [{"suffix": ".png"}]}, {"FileName": "cat.jpg"}, False),
        # exact numbers and booleans keep their JSON types
        ({"Count": [5]}, {"Count": 5}, True),
        ({"Count": [5]}, {"Count": "5"}, False),
        ({"Flag": [True]}, {"Flag": True}, True),
        ({"Flag": [True]}, {"Flag": 1}, False),
        ({"Count": [1]}, {"Count": True}, False),
        # a condition on an array holds when any element meets it
        ({"Tags": ["red"]}, {"Tags": ["blue", "red"]}, True),
        ({"Tags": ["red"]}, {"Tags": ["blue"]}, False),
        # nested objects, and DynamoDB's typed values (numbers are strings there)
        ({"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}},
         {"dynamodb": {"Keys": {"CustomerName": {"S": "AnyCompany Industries"}}}}, True),
        ({"dynamodb": {"NewImage": {"Quantity": {"N": ["50"]}}}}, {"dynamodb": {"NewImage": {"Quantity": {"N": "50"}}}},
         True),
        ({"dynamodb": {"NewImage": {"Quantity": {"N": ["50"]}}}}, {"dynamodb": {"NewImage": {}}}, False),
        ({"a": {"b": [{"exists": False}]}}, {}, True),
        ({"a": {"b": ["x"]}}, {"a": "not an object"}, False),
    ],
)  # fmt: skip
def test_documented_rules(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, record) is expected
    assert matches(json.dumps(pattern), record) is expected


def test_filter_set_keeps_a_record_when_any_pattern_matches() -> None:
    filters = FilterSet.of([ARCHIVE_PATTERN, '{"eventName": ["REMOVE"]}'])
    assert filters.keeps(change("REMOVE", None, {"entity": "job"}))
    assert filters.keeps(change("MODIFY", {"entity": "job", "status": "archiving"}, {"status": "running"}))
    assert not filters.keeps(change("INSERT", {"entity": "job", "status": "queued"}))


def test_no_patterns_keep_everything() -> None:
    assert FilterSet.of([]).keeps({"anything": 1})


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        ({"Source": [{"wildcard": "a*"}]}, "unsupported operator 'wildcard'"),
        ({"Ip": [{"cidr": "10.0.0.0/24"}]}, "unsupported operator 'cidr'"),
        ({"Name": [{"prefix": "a", "suffix": "b"}]}, "exactly one operator"),
        ({"$and": [{"a": ["b"]}, {"c": ["d"]}]}, "unsupported operator '$and'"),
        ({"Weather": [{"anything-but": {"wildcard": "x"}}]}, "inside 'anything-but'"),
        ({"Weather": [{"anything-but": []}]}, "at least one value"),
        ({"Weather": [{"anything-but": [True]}]}, "strings or numbers"),
        ({"Price": [{"numeric": ["!=", 1]}]}, "unknown numeric operator"),
        ({"Price": [{"numeric": [">", "1"]}]}, "must be a number"),
        ({"Price": [{"numeric": [">", 1, ">", 2]}]}, "one lower"),
        ({"Price": [{"numeric": [">"]}]}, "'numeric' takes"),
        ({"Name": [{"exists": "yes"}]}, "true or false"),
        ({"Name": [{"prefix": 3}]}, "takes a string"),
        ({"Name": "Alice"}, "must be arrays"),
        ({"Name": []}, "empty array"),
        ({"Name": [["Alice"]]}, "cannot nest"),
        ({"dynamodb": {}}, "at least one field"),
        ({"$or": [{"a": ["b"]}]}, "at least two"),
    ],
)
def test_patterns_it_cannot_evaluate_are_refused(pattern: dict[str, Any], complaint: str) -> None:
    with pytest.raises(PatternError, match=complaint.replace("$", r"\$")):
        compile_pattern(pattern)


def test_unknown_operator_is_refused_even_where_evaluation_would_stop_early() -> None:
    pattern = {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"x": [{"regex": ".*"}]}}}
    with pytest.raises(ValueError, match=r"dynamodb\.NewImage\.x: unsupported operator 'regex'"):
        matches(pattern, {"eventName": "INSERT"})


def test_a_pattern_that_is_not_json_is_refused() -> None:
    with pytest.raises(PatternError, match="not JSON"):
        compile_pattern('{"eventName": [')
