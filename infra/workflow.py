"""The poller: a Standard state machine per job (execution name = job id) that waits, polls once, and repeats.

Input and every Poll output: {"job_id": str, "wait_seconds": int, ...}; Poll adds "done", "status", "polls".
The Wait takes its duration from the state, so the poll function (and tests, and the local mode) decide it.
A Poll that still fails after its retries never ends the execution: the job is waited on again a minute
later. The state machine's timeout, past the job deadline, is the backstop.
"""

from __future__ import annotations

import aws_cdk as cdk
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
WAIT_AFTER_FAILED_POLL_SECONDS = 60


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

        wait = sfn.Wait(self, "Wait", time=sfn.WaitTime.seconds_path(WAIT_SECONDS_PATH))
        poll = tasks.LambdaInvoke(
            self,
            "Poll",
            lambda_function=self.poll_function,
            payload_response_only=True,
            retry_on_service_exceptions=True,  # Lambda throttling and service errors: 6 tries, 2 s doubling
        )
        # The function itself failed (an unexpected error, its timeout, a crash): a few spaced tries, then the Catch.
        poll.add_retry(
            errors=["States.TaskFailed"],
            interval=cdk.Duration.seconds(5),
            max_attempts=3,
            backoff_rate=2.0,
            max_delay=cdk.Duration.seconds(60),
            jitter_strategy=sfn.JitterType.FULL,
        )
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
            sfn.Choice(self, "IsDone")
            .when(sfn.Condition.boolean_equals(DONE_PATH, True), sfn.Succeed(self, "Finished"))
            .otherwise(wait)
        )

        log_group = logs.LogGroup(
            self, "PollerLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "Poller",
            comment="Polls one job's provider until the job is finished (execution name = job id)",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(wait.next(poll).next(is_done)),
            timeout=cdk.Duration.seconds(config.poller_timeout_seconds),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        role = self.state_machine.role
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.poll_function)}.Arn>:*]",
            "The LambdaInvoke task grant also covers the poll function's versions and aliases (its ARN followed "
            "by :*); the role can still invoke nothing but the poll function.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Execution logging uses the CloudWatch Logs delivery APIs (logs:CreateLogDelivery and the rest) and "
            "tracing uses xray:PutTraceSegments and friends; none of these accept a resource ARN, so Step "
            "Functions documents them with the resource *.",
        )
