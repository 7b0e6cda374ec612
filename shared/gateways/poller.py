"""The job's poller: one Step Functions execution per job, named after the job, started and stopped here.

Starting a poller that already exists is success (a retried submit starts it twice); stopping one that has
ended or never started is nothing to do. Every other `ClientError` is translated here, where the call is made,
into a `PollerError`: tracking is unavailable, a problem of ours rather than of the job.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shared.errors import RelayError

ALREADY_STARTED = frozenset({"ExecutionAlreadyExists"})
# An execution that has ended, was never started, or whose name the service no longer knows.
NOT_RUNNING = frozenset({"ExecutionDoesNotExist", "ValidationException"})


class PollerError(RelayError):
    """Step Functions refused or failed a call; `aws_code` is its error code."""

    status_code = 503
    code = "tracking_unavailable"

    def __init__(self, operation: str, job_id: str, aws_code: str, message: str) -> None:
        super().__init__(f"{operation} for job {job_id} failed: {aws_code} {message}".strip())
        self.operation = operation
        self.job_id = job_id
        self.aws_code = aws_code


def _aws_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Poller:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        if ":stateMachine:" not in state_machine_arn:
            raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
        self._sfn = sfn
        self.state_machine_arn = state_machine_arn

    def execution_arn(self, job_id: str) -> str:
        prefix, name = self.state_machine_arn.rsplit(":stateMachine:", 1)
        return f"{prefix}:execution:{name}:{job_id}"

    def start(self, job_id: str, *, callback_base: str) -> None:
        """Start the job's workflow (it dispatches the job, then polls it); one already started is left as it is.

        (Step Functions answers a repeated start with the same input as a success itself, and one with another
        input, or after the first ended, with `ExecutionAlreadyExists`.)
        """
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=job_id,
                input=json.dumps({"job_id": job_id, "callback_base": callback_base, "rounds": 0}),
            )
        except ClientError as exc:
            if _aws_code(exc) in ALREADY_STARTED:
                return
            raise self._translated("StartExecution", job_id, exc) from exc

    def stop(self, job_id: str, *, cause: str) -> bool:
        """Stop the job's poller; False when it was not running (ended, or never started)."""
        try:
            self._sfn.stop_execution(executionArn=self.execution_arn(job_id), cause=cause)
        except ClientError as exc:
            if _aws_code(exc) in NOT_RUNNING:
                return False
            raise self._translated("StopExecution", job_id, exc) from exc
        return True

    @staticmethod
    def _translated(operation: str, job_id: str, exc: ClientError) -> PollerError:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        return PollerError(operation, job_id, _aws_code(exc), message)
