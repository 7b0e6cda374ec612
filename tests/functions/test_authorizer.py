"""The REQUEST authorizer through the real handler: a Bearer key, looked up by its hash, names the tenant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from functions.authorizer import handler
from shared.repository.keys import KeyRepository, NewKey
from shared.runtime import Runtime
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import Cloud
from tests.support.events import FakeContext, fixture

ALL_ROUTES = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"


def authorize(headers: dict[str, str] | None, *, method_arn: str | None = None) -> dict[str, Any]:
    event = fixture("authorizer_request.json")
    event["headers"] = headers
    if method_arn is not None:
        event["methodArn"] = method_arn
    context: Any = FakeContext()
    result: dict[str, Any] = handler.lambda_handler(event, context)
    return result


def refused(headers: dict[str, str] | None) -> None:
    with pytest.raises(handler.Unauthorized) as caught:
        authorize(headers)
    assert str(caught.value) == "Unauthorized"
    assert caught.value.args == ("Unauthorized",)


class RecordingClient:
    """A DynamoDB client that remembers every call made through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def record(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return record


@pytest.fixture
def dynamo(cloud: Cloud, install_runtime: Callable[[Runtime], Runtime]) -> RecordingClient:
    recording = RecordingClient(cloud.clients["dynamodb"])
    install_runtime(Runtime(cloud.settings, clients={**cloud.clients, "dynamodb": recording}))
    return recording


@pytest.fixture
def key(keys: KeyRepository) -> NewKey:
    return keys.create_key("tenant-a")


def test_a_valid_key_gets_an_allow_policy_for_every_route_naming_the_tenant(
    dynamo: RecordingClient, key: NewKey
) -> None:
    policy = authorize({"Authorization": f"Bearer {key.api_key}"})

    assert policy == {
        "principalId": "tenant-a",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [ALL_ROUTES]}],
        },
        "context": {"tenant_id": "tenant-a", "key_id": key.record.key_id},
    }


def test_a_provisioned_tenant_is_named_to_its_usage_plan_by_its_usage_key(
    dynamo: RecordingClient, keys: KeyRepository, key: NewKey
) -> None:
    keys.set_usage_key("tenant-a", "k-1", "usage-key-value-of-tenant-a", "plan-1")

    policy = authorize({"Authorization": f"Bearer {key.api_key}"})

    assert policy["usageIdentifierKey"] == "usage-key-value-of-tenant-a"
    assert policy["principalId"] == "tenant-a"


def test_the_policy_covers_every_route_whichever_route_asked(dynamo: RecordingClient, key: NewKey) -> None:
    # API Gateway caches the answer per key and reuses it for other routes.
    asked = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/jobs/job_01m7ya4387v8ddd0fnnwa521gc"
    policy = authorize({"Authorization": f"Bearer {key.api_key}"}, method_arn=asked)
    assert policy["policyDocument"]["Statement"][0]["Resource"] == [ALL_ROUTES]


@pytest.mark.parametrize("header", ["Authorization", "authorization", "AUTHORIZATION"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_header_name_and_scheme_are_case_insensitive(
    dynamo: RecordingClient, key: NewKey, header: str, scheme: str
) -> None:
    assert authorize({header: f"{scheme} {key.api_key}"})["context"]["tenant_id"] == "tenant-a"


def test_the_key_is_looked_up_by_its_hash_only(cloud: Cloud, dynamo: RecordingClient, key: NewKey) -> None:
    authorize({"Authorization": f"Bearer {key.api_key}"})

    digest = hashlib.sha256(key.api_key.encode()).hexdigest()
    # The key by its hash, then its tenant's usage plan key.
    assert [name for name, _ in dynamo.calls] == ["get_item", "get_item"]
    assert dynamo.calls[0][1]["Key"] == {"pk": {"S": f"APIKEY#{digest}"}, "sk": {"S": "APIKEY"}}
    assert dynamo.calls[1][1]["Key"] == {"pk": {"S": "TENANT#tenant-a"}, "sk": {"S": "TENANT"}}
    assert key.api_key not in repr(dynamo.calls)
    # Nor is the key itself anywhere in the table.
    assert key.api_key not in json.dumps(cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"])


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="no-headers"),
        pytest.param({}, id="no-authorization"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
        pytest.param({"Authorization": "Bearer "}, id="scheme-and-space"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Token kr_abc"}, id="token-scheme"),
        pytest.param({"X-Api-Key": "kr_abc"}, id="other-header"),
    ],
)
def test_a_missing_or_non_bearer_authorization_is_refused(
    dynamo: RecordingClient, headers: dict[str, str] | None
) -> None:
    refused(headers)


@pytest.mark.parametrize(
    "api_key",
    [
        pytest.param("kr_" + "A" * 43, id="unknown"),
        pytest.param("sk_live_abcdef", id="foreign-prefix"),
        pytest.param("kr_" + "A" * 200, id="too-long"),
    ],
)
def test_an_unknown_key_is_refused(dynamo: RecordingClient, key: NewKey, api_key: str) -> None:
    refused({"Authorization": f"Bearer {api_key}"})


@pytest.mark.parametrize(
    "suffix", ["\n", "\r\n", "\x00", "x", "\u00a0"], ids=["lf", "crlf", "nul", "extra-char", "nbsp"]
)
def test_a_real_key_with_anything_after_it_is_refused_without_a_read(
    dynamo: RecordingClient, key: NewKey, suffix: str
) -> None:
    """Keys are matched whole: `$` (or `strip()`) would let a trailing newline through to the real key."""
    refused({"Authorization": f"Bearer {key.api_key}{suffix}"})
    assert dynamo.calls == []


def test_spaces_around_the_key_are_allowed(dynamo: RecordingClient, key: NewKey) -> None:
    assert authorize({"Authorization": f"Bearer  {key.api_key} \t"})["principalId"] == "tenant-a"


def test_keys_are_case_sensitive(dynamo: RecordingClient, key: NewKey) -> None:
    refused({"Authorization": f"Bearer {key.api_key.upper()}"})


def test_a_revoked_key_is_refused(dynamo: RecordingClient, keys: KeyRepository, key: NewKey) -> None:
    assert authorize({"Authorization": f"Bearer {key.api_key}"})["principalId"] == "tenant-a"
    keys.revoke(api_key=key.api_key)
    refused({"Authorization": f"Bearer {key.api_key}"})


def test_other_keys_of_the_tenant_still_work_after_one_is_revoked(
    dynamo: RecordingClient, keys: KeyRepository, key: NewKey
) -> None:
    second = keys.create_key("tenant-a")
    keys.revoke(tenant_id="tenant-a", key_id=key.record.key_id)
    refused({"Authorization": f"Bearer {key.api_key}"})
    assert authorize({"Authorization": f"Bearer {second.api_key}"})["context"]["key_id"] == second.record.key_id


def test_an_unreadable_key_table_fails_closed(
    cloud: Cloud, install_runtime: Callable[[Runtime], Runtime], key: NewKey
) -> None:
    install_runtime(cloud.runtime(httpx.Client(), table_name="no-such-table"))
    with pytest.raises(ClientError):
        authorize({"Authorization": f"Bearer {key.api_key}"})
