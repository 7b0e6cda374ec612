"""The poller gateway on moto Step Functions: start once per job, stop, and Step Functions' errors in our terms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.gateways.poller import Poller, PollerError

DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})
ROLE = "arn:aws:iam::123456789012:role/poller"
BASE = "https://api.example.com/v1"


@pytest.fixture
def sfn(aws_mock: None, aws_clients: dict[str, Any]) -> Any:
    return aws_clients["stepfunctions"]


@pytest.fixture
def poller(sfn: Any) -> Poller:
    arn = sfn.create_state_machine(name="poller", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    return Poller(sfn, arn)


class Failing:
    """A Step Functions client whose every call fails with `code`."""

    def __init__(self, code: str) -> None:
        self.code = code

    def start_execution(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "StartExecution")

    def stop_execution(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "StopExecution")


def test_a_poller_is_one_execution_named_after_the_job_with_its_first_dispatch_input(poller: Poller, sfn: Any) -> None:
    poller.start("job_1", callback_base=BASE)

    [execution] = sfn.list_executions(stateMachineArn=poller.state_machine_arn)["executions"]
    assert (execution["name"], execution["executionArn"]) == ("job_1", poller.execution_arn("job_1"))
    started = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {"job_id": "job_1", "callback_base": BASE, "rounds": 0}


def test_starting_a_jobs_poller_again_is_success_and_starts_nothing_more(poller: Poller, sfn: Any) -> None:
    poller.start("job_1", callback_base=BASE)

    poller.start("job_1", callback_base=BASE)
    poller.start("job_1", callback_base=BASE + "/other")  # another input: ExecutionAlreadyExists, still success

    assert len(sfn.list_executions(stateMachineArn=poller.state_machine_arn)["executions"]) == 1


def test_execution_already_exists_is_success() -> None:
    poller = Poller(Failing("ExecutionAlreadyExists"), "arn:aws:states:us-east-1:1:stateMachine:p")
    poller.start("j", callback_base=BASE)


def test_stop_ends_the_execution_and_stopping_one_not_running_is_nothing_to_do(poller: Poller, sfn: Any) -> None:
    poller.start("job_1", callback_base=BASE)

    assert poller.stop("job_1", cause="job canceled") is True
    assert sfn.describe_execution(executionArn=poller.execution_arn("job_1"))["status"] == "ABORTED"
    assert poller.stop("job_never_started", cause="job canceled") is False


@pytest.mark.parametrize(("call", "operation"), [("start", "StartExecution"), ("stop", "StopExecution")])
def test_other_refusals_are_poller_errors_naming_the_call_and_code(call: str, operation: str) -> None:
    poller = Poller(Failing("ThrottlingException"), "arn:aws:states:us-east-1:123456789012:stateMachine:poller")

    calls = {
        "start": lambda: poller.start("job_1", callback_base=BASE),
        "stop": lambda: poller.stop("job_1", cause="x"),
    }

    with pytest.raises(PollerError) as raised:
        calls[call]()

    error = raised.value
    assert (error.operation, error.job_id, error.aws_code) == (operation, "job_1", "ThrottlingException")
    assert (error.status_code, error.code) == (503, "tracking_unavailable")
    assert isinstance(error.__cause__, ClientError)


def test_the_execution_arn_is_the_state_machines_with_the_job_as_name() -> None:
    poller = Poller(Failing("x"), "arn:aws:states:eu-west-1:123456789012:stateMachine:relay-poller")

    assert poller.execution_arn("job_9") == "arn:aws:states:eu-west-1:123456789012:execution:relay-poller:job_9"
    with pytest.raises(ValueError, match="not a state machine ARN"):
        Poller(Failing("x"), "arn:aws:states:eu-west-1:123456789012:activity:relay")
