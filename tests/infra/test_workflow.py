"""The job workflow: dispatch rounds, then the polling loop; retries and failure paths, timeout, logging, tracing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ARCHIVE_GRACE_SECONDS, POLLER_MARGIN_SECONDS
from tests.infra.synth import Synth, render, synthesize


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


@pytest.fixture(scope="module")
def machine(synth: Synth) -> dict[str, Any]:
    (state_machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    props: dict[str, Any] = state_machine["Properties"]
    return props


@pytest.fixture(scope="module")
def definition(machine: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = json.loads(render(machine["DefinitionString"]))
    return rendered


def test_dispatch_rounds_then_the_wait_poll_choice_loop(synth: Synth, definition: dict[str, Any]) -> None:
    states = definition["States"]

    assert definition["StartAt"] == "Dispatch"
    dispatch = states["Dispatch"]
    assert dispatch["Type"] == "Task"
    assert dispatch["Resource"] == f"<{synth.function_id('dispatch')}.Arn>"
    assert "Parameters" not in dispatch
    assert "ResultPath" not in dispatch
    assert dispatch["Next"] == "IsDispatched"
    # Ended: nothing to track. With a provider: the polling loop. Neither: wait, then another round.
    assert states["IsDispatched"] == {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"},
            {"Variable": "$.dispatched", "BooleanEquals": True, "Next": "Wait"},
        ],
        "Default": "WaitToDispatch",
    }
    assert {k: v for k, v in states["WaitToDispatch"].items() if k != "Comment"} == {
        "Type": "Wait",
        "SecondsPath": "$.wait_seconds",
        "Next": "Dispatch",
    }

    assert states["Wait"] == {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Poll"}
    poll = states["Poll"]
    assert poll["Type"] == "Task"
    # payload_response_only: the function's answer is the next state, and it is called with the whole state.
    assert poll["Resource"] == f"<{synth.function_id('poll')}.Arn>"
    assert "Parameters" not in poll
    assert "ResultPath" not in poll
    assert poll["Next"] == "IsDone"
    assert states["IsDone"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"}],
        "Default": "Wait",
    }
    assert states["Finished"] == {"Type": "Succeed"}
    assert set(states) == {
        "Dispatch",
        "IsDispatched",
        "WaitToDispatch",
        "DispatchLater",
        "Wait",
        "Poll",
        "IsDone",
        "Finished",
        "KeepWaiting",
    }


def test_a_waiting_round_costs_three_state_transitions(definition: dict[str, Any]) -> None:
    """WaitToDispatch -> Dispatch -> IsDispatched -> WaitToDispatch: the cost of each round a job waits."""
    states = definition["States"]
    loop = ["WaitToDispatch", states["WaitToDispatch"]["Next"], states["Dispatch"]["Next"]]
    assert loop == ["WaitToDispatch", "Dispatch", "IsDispatched"]
    assert states["IsDispatched"]["Default"] == loop[0]


def test_a_dispatch_that_keeps_failing_waits_a_minute_and_tries_again(definition: dict[str, Any]) -> None:
    states = definition["States"]

    service_errors, task_failures = states["Dispatch"]["Retry"]
    assert "Lambda.ServiceException" in service_errors["ErrorEquals"]
    assert task_failures["ErrorEquals"] == ["States.TaskFailed"]
    assert task_failures["MaxAttempts"] == 3
    assert states["Dispatch"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "DispatchLater"}]
    later = states["DispatchLater"]
    assert (later["Type"], later["Result"], later["ResultPath"], later["Next"]) == (
        "Pass",
        60,
        "$.wait_seconds",
        "WaitToDispatch",
    )


def test_poll_retries_with_backoff(definition: dict[str, Any]) -> None:
    service_errors, task_failures = definition["States"]["Poll"]["Retry"]

    assert "Lambda.ServiceException" in service_errors["ErrorEquals"]
    assert "Lambda.SdkClientException" in service_errors["ErrorEquals"]
    assert service_errors["BackoffRate"] == 2
    assert task_failures["ErrorEquals"] == ["States.TaskFailed"]
    assert task_failures["BackoffRate"] == 2
    assert task_failures["MaxAttempts"] == 3
    assert task_failures["JitterStrategy"] == "FULL"


def test_a_poll_that_keeps_failing_waits_a_minute_and_polls_again(definition: dict[str, Any]) -> None:
    states = definition["States"]

    assert states["Poll"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "KeepWaiting"}]
    keep = states["KeepWaiting"]
    assert (keep["Type"], keep["Result"], keep["ResultPath"], keep["Next"]) == ("Pass", 60, "$.wait_seconds", "Wait")
    assert not [name for name, state in states.items() if state["Type"] == "Fail"]


def test_timeout_is_the_backstop_beyond_the_job_deadline(definition: dict[str, Any]) -> None:
    assert definition["TimeoutSeconds"] == 3600 + ARCHIVE_GRACE_SECONDS + POLLER_MARGIN_SECONDS


def test_standard_logged_and_traced(synth: Synth, machine: dict[str, Any]) -> None:
    assert machine.get("StateMachineType", "STANDARD") == "STANDARD"
    assert "StateMachineName" not in machine
    assert machine["TracingConfiguration"] == {"Enabled": True}
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group_id]["Properties"]["RetentionInDays"] == 30
