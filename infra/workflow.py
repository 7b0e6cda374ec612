"""The job workflow: a Standard state machine per job (execution name = job id) that hands the job to a
provider, then waits, polls once, and repeats.

Dispatch runs first: one round of offering the job to its candidates (shared/services/dispatch.py). Its output
says whether the job ended (`done`), went to a provider (`dispatched`: the polling loop takes over), or must
wait `wait_seconds` for another round (WaitToDispatch, then Dispatch again). A waiting round is three state
transitions: WaitToDispatch, Dispatch, IsDispatched.

Poll input and output: {"job_id": str, "wait_seconds": int, ...}; Poll adds "done", "status", "polls".
The Waits take their duration from the state, so the functions (and tests, and the local mode) decide it.
A Dispatch or Poll that still fails after its retries never ends the execution: the job is tried again a
minute later. The state machine's timeout, past the job deadline, is the backstop.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import grants
from infra.config import RelayConfig
from infra.lambda_defaults import FunctionSpec, LambdaDefaults, settings_environment
from infra.nag import acknowledge, logical_id
from infra.secrets import Secrets
from infra.storage import Storage

WAIT_SECONDS_PATH = "$.wait_seconds"
DONE_PATH = "$.done"
DISPATCHED_PATH = "$.dispatched"
WAIT_AFTER_FAILED_POLL_SECONDS = 60
WAIT_AFTER_FAILED_DISPATCH_SECONDS = 60


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        lambdas: LambdaDefaults,
        storage: Storage,
        secrets: Secrets,
    ) -> None:
        super().__init__(scope, construct_id)
        table = storage.table
        self.poll_function = lambdas.create(
            self,
            "PollFunction",
            FunctionSpec(
                name="poll",
                description="One status check of one job with its provider; returns the next wait",
                memory_mb=256,
                timeout=cdk.Duration.seconds(60),
                environment=settings_environment(
                    table_name=table.table_name,
                    provider_secret_name=secrets.provider_keys.secret_name,
                    enabled_providers=config.enabled_providers,
                    job_deadline_seconds=config.job_deadline_seconds,
                    job_retention_days=config.job_retention_days,
                ),
            ),
        )
        grants.table_items(self.poll_function, table, "poll")
        grants.read_secrets(self.poll_function, secrets.provider_keys)

        self.dispatch_function = self._dispatch_function(config, lambdas, storage, secrets)
        finished = sfn.Succeed(self, "Finished")

        wait = sfn.Wait(self, "Wait", time=sfn.WaitTime.seconds_path(WAIT_SECONDS_PATH))
        poll = self._task("Poll", self.poll_function)
        keep_waiting = sfn.Pass(
            self,
            "KeepWaiting",
            comment="Poll failed after its retries; the job is not abandoned, it is polled again later",
            result=sfn.Result.from_number(WAIT_AFTER_FAILED_POLL_SECONDS),
            result_path=WAIT_SECONDS_PATH,
        )
        # DISCARD keeps the state as it was before the failed Poll (job_id and all).
        poll.add_catch(keep_waiting, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        keep_waiting.next(wait)
        is_done = (
            sfn.Choice(self, "IsDone").when(sfn.Condition.boolean_equals(DONE_PATH, True), finished).otherwise(wait)
        )
        wait.next(poll).next(is_done)

        dispatch = self._task("Dispatch", self.dispatch_function)
        wait_to_dispatch = sfn.Wait(
            self,
            "WaitToDispatch",
            comment="No provider could take the job this round (paced, throttled or down); try again after this",
            time=sfn.WaitTime.seconds_path(WAIT_SECONDS_PATH),
        )
        dispatch_later = sfn.Pass(
            self,
            "DispatchLater",
            comment="Dispatch failed after its retries; the job is offered again later (a handoff in progress is "
            "never repeated: Dispatch reads the job's handoff mark first)",
            result=sfn.Result.from_number(WAIT_AFTER_FAILED_DISPATCH_SECONDS),
            result_path=WAIT_SECONDS_PATH,
        )
        dispatch.add_catch(dispatch_later, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        dispatch_later.next(wait_to_dispatch)
        wait_to_dispatch.next(dispatch)
        dispatch.next(
            sfn.Choice(self, "IsDispatched")
            .when(sfn.Condition.boolean_equals(DONE_PATH, True), finished)
            .when(sfn.Condition.boolean_equals(DISPATCHED_PATH, True), wait)
            .otherwise(wait_to_dispatch)
        )

        log_group = logs.LogGroup(
            self, "PollerLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "Poller",
            comment="Hands one job to a provider, then polls it until it is finished (execution name = job id)",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(dispatch),
            timeout=cdk.Duration.seconds(config.poller_timeout_seconds),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        role = self.state_machine.role
        for function, name in ((self.poll_function, "poll"), (self.dispatch_function, "dispatch")):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
                f"The LambdaInvoke task grant also covers the {name} function's versions and aliases (its ARN "
                "followed by :*); the role can still invoke nothing but the poll and dispatch functions.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Execution logging uses the CloudWatch Logs delivery APIs (logs:CreateLogDelivery and the rest) and "
            "tracing uses xray:PutTraceSegments and friends; none of these accept a resource ARN, so Step "
            "Functions documents them with the resource *.",
        )

    def _task(self, name: str, function: lambda_.IFunction) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload_response_only=True,
            retry_on_service_exceptions=True,  # Lambda throttling and service errors: 6 tries, 2 s doubling
        )
        # The function itself failed (an unexpected error, its timeout, a crash): a few spaced tries, then the Catch.
        task.add_retry(
            errors=["States.TaskFailed"],
            interval=cdk.Duration.seconds(5),
            max_attempts=3,
            backoff_rate=2.0,
            max_delay=cdk.Duration.seconds(60),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _dispatch_function(
        self, config: RelayConfig, lambdas: LambdaDefaults, storage: Storage, secrets: Secrets
    ) -> lambda_.Function:
        table = storage.table
        function = lambdas.create(
            self,
            "DispatchFunction",
            FunctionSpec(
                name="dispatch",
                description="One round of handing a job to a provider, paced per provider; returns the next wait",
                memory_mb=256,
                # Every candidate may take its full read timeout (20 s) before answering.
                timeout=cdk.Duration.seconds(150),
                environment=settings_environment(
                    table_name=table.table_name,
                    provider_secret_name=secrets.provider_keys.secret_name,
                    signing_secret_name=secrets.signing_key.secret_name,
                    provider_order=config.provider_order,
                    enabled_providers=config.enabled_providers,
                    job_deadline_seconds=config.job_deadline_seconds,
                    job_retention_days=config.job_retention_days,
                    provider_limits=config.provider_limits_json,
                ),
            ),
        )
        grants.table_items(function, table, "dispatch")
        grants.read_secrets(function, secrets.provider_keys, secrets.signing_key)
        return function
