"""`relay:snapstart`: the functions callers wait on start from a snapshot, and API Gateway calls their alias."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.lambda_defaults import LIVE_ALIAS, SNAPSTART_FUNCTIONS
from tests.infra.synth import FUNCTIONS, Synth, synthesize
from tests.infra.test_api import methods


@pytest.fixture(scope="module")
def snapstart() -> Synth:
    synth = synthesize({"relay:snapstart": "true"}, nag=True)
    synth.app.synth()  # raises on any unacknowledged cdk-nag finding
    return synth


@pytest.fixture(scope="module")
def default() -> Synth:
    return synthesize()


def aliases(synth: Synth) -> dict[str, dict[str, Any]]:
    """Function logical id -> its alias's properties (with the alias's own logical id under `Id`)."""
    found = {}
    for logical_id, alias in synth.of_type("AWS::Lambda::Alias").items():
        props = alias["Properties"]
        found[props["FunctionName"]["Ref"]] = {**props, "Id": logical_id}
    return found


def test_off_by_default(default: Synth) -> None:
    assert not default.of_type("AWS::Lambda::Version")
    assert not default.of_type("AWS::Lambda::Alias")
    for name in FUNCTIONS:
        assert "SnapStart" not in default.function(name)


def test_the_request_path_functions_start_from_published_snapshots(snapstart: Synth) -> None:
    assert {"api", "authorizer", "callback"} == SNAPSTART_FUNCTIONS
    for name in FUNCTIONS:
        expected = {"ApplyOn": "PublishedVersions"} if name in SNAPSTART_FUNCTIONS else None
        assert snapstart.function(name).get("SnapStart") == expected, name


def test_each_has_a_live_alias_on_its_current_version_and_old_versions_go(snapstart: Synth) -> None:
    versions = snapstart.of_type("AWS::Lambda::Version")
    by_function = aliases(snapstart)

    assert sorted(by_function) == sorted(snapstart.function_id(name) for name in SNAPSTART_FUNCTIONS)
    for function_id, alias in by_function.items():
        version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert alias["Name"] == LIVE_ALIAS
        assert versions[version_id]["Properties"]["FunctionName"] == {"Ref": function_id}
        # A replaced version's snapshot would be billed for as long as the version exists.
        assert versions[version_id]["DeletionPolicy"] == "Delete"
    assert len(versions) == len(SNAPSTART_FUNCTIONS)


def test_api_gateway_invokes_the_aliases(snapstart: Synth) -> None:
    by_function = aliases(snapstart)
    alias_of = {name: by_function[snapstart.function_id(name)]["Id"] for name in SNAPSTART_FUNCTIONS}

    for (verb, path), method in methods(snapstart).items():
        if verb == "OPTIONS":
            continue
        owner = "callback" if path.startswith("/callbacks/") else "api"
        assert {"Ref": alias_of[owner]} in method["Integration"]["Uri"]["Fn::Join"][1], (verb, path)
    (authorizer,) = snapstart.of_type("AWS::ApiGateway::Authorizer").values()
    assert {"Ref": alias_of["authorizer"]} in authorizer["Properties"]["AuthorizerUri"]["Fn::Join"][1]

    invoked = {
        json.dumps(p["Properties"]["FunctionName"]) for p in snapstart.of_type("AWS::Lambda::Permission").values()
    }
    assert invoked == {json.dumps({"Ref": alias}) for alias in alias_of.values()}
