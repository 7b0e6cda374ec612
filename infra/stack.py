"""The one stack: composes the constructs and exports what the CLI, the local mode and operators need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.api import Api
from infra.config import RelayConfig
from infra.console import Console
from infra.edge import EdgeProtection
from infra.lambda_defaults import LambdaDefaults
from infra.notifications import Notifications
from infra.observability import Observability
from infra.pipeline import Pipeline
from infra.secrets import Secrets
from infra.storage import Storage
from infra.workflow import Workflow


class KlingRelayStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: RelayConfig, repo_root: Path, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.secrets = Secrets(self, "Secrets")
        self.lambdas = LambdaDefaults(
            self, "Lambda", repo_root=repo_root, log_retention=config.log_retention, snapstart=config.snapstart
        )
        self.notifications = Notifications(
            self, "Notifications", config=config, lambdas=self.lambdas, storage=self.storage, secrets=self.secrets
        )
        self.workflow = Workflow(
            self, "Workflow", config=config, lambdas=self.lambdas, storage=self.storage, secrets=self.secrets
        )
        self.console = Console(self, "Console", config=config, storage=self.storage) if config.console else None
        self.api = Api(
            self,
            "Api",
            config=config,
            lambdas=self.lambdas,
            storage=self.storage,
            secrets=self.secrets,
            state_machine=self.workflow.state_machine,
            console_origin=self.console.origin if self.console else None,
        )
        if self.console:
            self.console.publish(self.api.rest_api, repo_root, config.log_retention)
        stage = self.api.rest_api.deployment_stage
        self.edge = EdgeProtection(self, "Edge", config=config, stage=stage) if config.waf else None
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            config=config,
            lambdas=self.lambdas,
            storage=self.storage,
            events_topic=self.notifications.events_topic,
        )
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            dead_letter_queues={**self.pipeline.dead_letter_queues, **self.notifications.dead_letter_queues},
            functions=self.functions,
            table=self.storage.table,
            state_machine=self.workflow.state_machine,
        )
        self._outputs()

    @property
    def functions(self) -> list[lambda_.Function]:
        return [
            self.api.api_function,
            self.api.authorizer_function,
            self.api.callback_function,
            self.workflow.dispatch_function,
            self.workflow.poll_function,
            self.pipeline.archive_function,
            self.pipeline.notify_function,
            self.notifications.deliver_function,
        ]

    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": (self.api.rest_api.url, "Base URL of the API, ending in /v1/"),
            "TopicArn": (self.notifications.events_topic.topic_arn, "SNS topic with one event per job change"),
            "BucketName": (self.storage.bucket.bucket_name, "Bucket holding archived videos under jobs/"),
            "TableName": (self.storage.table.table_name, "DynamoDB table (jobs, API keys, tenants)"),
            "StateMachineArn": (
                self.workflow.state_machine.state_machine_arn,
                "Job workflow state machine (dispatch, then polling)",
            ),
            "ProviderSecretName": (self.secrets.provider_keys.secret_name, "Secret to fill with provider API keys"),
            "SigningSecretName": (self.secrets.signing_key.secret_name, "Generated signing key secret"),
            "DefaultTier": (self.config.default_tier, "Usage plan tier of a tenant given none"),
        }
        if self.console:
            outputs["ConsoleUrl"] = (self.console.url, "The web console (sign in with an API key)")
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
