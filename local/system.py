"""The whole system on one machine: the synthesized stack deployed into moto, the real handlers,
the provider emulator, the API on 127.0.0.1, and the event-source mappings driven as deployed.

Local mode changes settings only (where providers live, short waits through the execution input
and the poll step's answers, loopback allowed for downloads and webhooks); the template, the
state machine definition and the handler code are the deployed ones.
"""

from __future__ import annotations

import gc
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from infra.console import CONSOLE_DIR
from infra.names import STACK_NAME
from local.aws.apigateway import ApiGatewayAdapter
from local.aws.cloudfront import ConsoleDistribution, policy_headers
from local.aws.deploy import StackDeployer
from local.aws.eventsources import EventSources, QueueMapping
from local.aws.lambdas import FunctionHost, FunctionRegistry, deployed_functions
from local.aws.moto_server import AwsEmulator
from local.aws.sandboxes import SandboxPool
from local.aws.step_functions import install_state_machines
from local.aws.template import REGION, Resolver, Template
from local.environment import override_environment
from local.provider_emulator import KIE_DOCUMENTED_LIMIT, ProviderEmulator, ProviderLimit
from local.synth import ROOT, asset_archives, synthesize
from shared.gateways.usage_plans import UsagePlans
from shared.models.common import PROVIDER_NAMES, ProviderName
from shared.models.tiers import DEFAULT_TIER
from shared.repository.keys import KeyRepository, TenantLimits
from shared.services.tenants import provision
from shared.settings import env_name
from shared.signing import SigningKeys

# Functions whose invocations run side by side here as on Lambda (their handlers keep no per-invocation state
# at module level beyond Powertools' log keys). Each job's Dispatch round may wait up to a second for the slot
# it booked; one at a time, that second would hold back every other job's round. (Poll stays one at a time: side
# by side, a few hundred running jobs polling every few seconds take the cores every other function needs.)
SIDE_BY_SIDE = {"dispatch": 8}


@dataclass(frozen=True)
class LocalOptions:
    api_port: int = 0
    emulator_port: int = 0
    console_port: int = 0
    job_seconds: float = 3.0
    poll_min_wait_seconds: int = 1
    poll_max_wait_seconds: int = 3
    callback_first_wait_seconds: int = 8  # after the emulator's callbacks, as 90 s is in production
    # A job no provider could take is offered again after at most this long (60 s in production).
    dispatch_retry_max_seconds: float = 5.0
    kie_hmac_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    log_file: Path | None = None
    # Functions (by short name) run in this many processes of their own, as Lambda serves concurrent invocations
    # from separate sandboxes; the rest run in this process. For bursts and floods; a few seconds to start.
    sandboxes: Mapping[str, int] = field(default_factory=dict)
    # The submit limits the emulated providers enforce: Kie's documented ones unless told otherwise.
    provider_limits: Mapping[ProviderName, ProviderLimit | None] = field(
        default_factory=lambda: {"kie": KIE_DOCUMENTED_LIMIT}
    )


@dataclass(frozen=True)
class NewKey:
    tenant: str
    api_key: str
    webhook_secret: str


class LocalSystem:
    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self.aws = AwsEmulator()
        self.functions = FunctionRegistry()
        self.template: Template | None = None
        self.deployer: StackDeployer | None = None
        self.emulator: ProviderEmulator | None = None
        self.api: ApiGatewayAdapter | None = None
        self.console: ConsoleDistribution | None = None
        self.events: EventSources | None = None
        self.outputs: dict[str, str] = {}
        self._moto_invocations: Any = None
        self._sandboxes: list[SandboxPool] = []
        self._log: TextIO | None = None
        self._unquiet: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalSystem:
        self._quiet_functions()
        self.template = template = synthesize()
        self.aws.start()
        self.deployer = deployer = StackDeployer(template, self.aws.clients)
        deployer.deploy(asset_archives(template))
        install_state_machines(deployer)

        self.emulator = ProviderEmulator(
            port=self.options.emulator_port,
            job_seconds=self.options.job_seconds,
            kie_hmac_key=self.options.kie_hmac_key,
            limits=self.options.provider_limits,
        )
        self.emulator.start()
        aliases = self._start_console(template, deployer)
        self.api = ApiGatewayAdapter(
            template,
            deployer.resolve,
            self.functions,
            port=self.options.api_port,
            aliases=aliases,
            apigateway=lambda: self.aws.client("apigateway"),
        )
        api_url = self.api.start()
        self._configure_console(template, deployer, api_url, aliases)
        self._register_functions(template, deployer, api_url)
        self._store_provider_keys()
        self._start_sandboxes()

        self._moto_invocations = self.functions.serving_moto_invocations()
        self._moto_invocations.__enter__()
        self.events = EventSources.from_template(template, deployer.resolve, self.functions, self.aws.clients)
        for mapping in self.events.mappings:
            if isinstance(mapping, QueueMapping) and mapping.concurrency > 1:
                # As Lambda runs a queue's batches side by side, up to the mapping's MaximumConcurrency.
                self.functions.resolve(mapping.properties.function_name).allow_concurrency(mapping.concurrency)
        self.events.start()
        self.outputs = deployer.outputs({"ApiUrl": api_url})
        # Everything made so far (the template, moto's backends, every imported module) lives as long as the
        # stack: kept out of the collector's full passes, which otherwise stop every request for a few
        # hundred ms at a time under load.
        gc.collect()
        gc.freeze()
        return self

    def stop(self) -> None:
        gc.unfreeze()  # what start() kept from the collector is collectable again once the stack is gone
        if self.events is not None:
            self.events.stop()
        if self.api is not None:
            self.api.stop()
        if self.console is not None:
            self.console.stop()
        for pool in self._sandboxes:
            pool.stop()
        self._sandboxes = []
        if self._moto_invocations is not None:
            self._moto_invocations.__exit__(None, None, None)
            self._moto_invocations = None
        if self.emulator is not None:
            self.emulator.stop()
        self.aws.stop()
        if self._unquiet is not None:
            self._unquiet()
            self._unquiet = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- wiring ----------------------------------------------------------------------------------

    def _start_console(self, template: Template, deployer: StackDeployer) -> dict[str, str]:
        """Serve the console when the template has one; the deployed origin -> local origin swaps so far."""
        distributions = template.of_type("AWS::CloudFront::Distribution")
        if not distributions:
            return {}
        self.console = ConsoleDistribution(template, ROOT / CONSOLE_DIR, port=self.options.console_port)
        self.console.start()
        (name,) = distributions
        return {f"https://{deployer.created[name].attributes['DomainName']}": self.console.origin}

    def _configure_console(
        self, template: Template, deployer: StackDeployer, api_url: str, aliases: dict[str, str]
    ) -> None:
        """The console's config file names the local API, and its CSP names the local API and video hosts."""
        if self.console is None:
            return
        assert self.api is not None
        rest_api = self.api.api
        bucket = self._output("BucketName")
        local_api = api_url.rsplit("/", 1)[0]
        aliases = {
            **aliases,
            f"https://{rest_api.api_id}.execute-api.{REGION}.amazonaws.com": local_api,
            f"https://{bucket}.s3.{REGION}.amazonaws.com": self.aws.endpoint_url.rstrip("/"),
            f"https://{bucket}.s3.amazonaws.com": self.aws.endpoint_url.rstrip("/"),
        }

        def ref(name: str) -> object:
            return rest_api.api_id if name == rest_api.logical_id else deployer.ref(name)

        resolve = Resolver(ref, deployer.att, template.parameter_defaults())
        self.console.configure(api_base_url=api_url, headers=policy_headers(template, resolve, aliases))

    def local_environment(self, api_url: str) -> dict[str, str]:
        assert self.emulator is not None
        values = {
            env_name("local_mode"): "true",
            env_name("public_base_url"): api_url,
            env_name("poll_min_wait_seconds"): str(self.options.poll_min_wait_seconds),
            env_name("poll_max_wait_seconds"): str(self.options.poll_max_wait_seconds),
            env_name("callback_first_wait_seconds"): str(self.options.callback_first_wait_seconds),
            env_name("dispatch_retry_base_seconds"): str(min(1.0, self.options.dispatch_retry_max_seconds)),
            env_name("dispatch_retry_max_seconds"): str(self.options.dispatch_retry_max_seconds),
            env_name("provider_read_timeout"): "10",
        }
        if self.console is not None:
            values[env_name("cors_allow_origin")] = self.console.origin
        for provider in PROVIDER_NAMES:
            values[env_name(f"{provider}_base_url")] = self.emulator.provider_base_url(provider)
        return values

    def _register_functions(self, template: Template, deployer: StackDeployer, api_url: str) -> None:
        local = self.local_environment(api_url)
        for spec in deployed_functions(template, deployer):
            self.functions.add(FunctionHost(spec, local, concurrency=SIDE_BY_SIDE.get(spec.short_name, 1)))

    def _start_sandboxes(self) -> None:
        for name, count in self.options.sandboxes.items():
            if not count:
                continue
            host = self.functions.by_short_name(name)
            pool = SandboxPool(host.spec, host.environment, count, self.options.log_file)
            self._sandboxes.append(pool)  # before it starts: stop() ends a pool that failed halfway too
            host.run_in_sandboxes(pool.start())

    def _store_provider_keys(self) -> None:
        assert self.emulator is not None
        keys: dict[str, str] = {provider: self.emulator.api_key(provider) for provider in PROVIDER_NAMES}
        keys["kie_webhook_hmac_key"] = self.options.kie_hmac_key
        self.aws.client("secretsmanager").put_secret_value(
            SecretId=self.secret_id("ProviderSecretName"), SecretString=json.dumps(keys)
        )

    def _quiet_functions(self) -> None:
        """Function logs go to a file (or nowhere), not into the demo's or server's own output; `stop` undoes it."""
        import os

        from shared.observability import logger

        handler = logger.registered_handler
        previous_level, previous_stream = logger.log_level, getattr(handler, "stream", None)
        quiet = {} if "POWERTOOLS_METRICS_DISABLED" in os.environ else {"POWERTOOLS_METRICS_DISABLED": "true"}
        restore_environment = override_environment(quiet)

        def restore() -> None:
            restore_environment()
            logger.setLevel(previous_level)
            if previous_stream is not None:
                handler.setStream(previous_stream)  # type: ignore[attr-defined]

        self._unquiet = restore
        if self.options.log_file is not None:
            self.options.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.options.log_file.open("a", encoding="utf-8")
            handler.setStream(self._log)  # type: ignore[attr-defined]
        else:
            logger.setLevel("ERROR")

    # -- helpers for clients, the CLI and tests ----------------------------------------------------

    def secret_id(self, output: str) -> str:
        return self.outputs.get(output) or self._output(output)

    def _output(self, key: str) -> str:
        assert self.deployer is not None
        return self.deployer.outputs()[key]

    @property
    def base_url(self) -> str:
        return self.outputs["ApiUrl"]

    @property
    def table_name(self) -> str:
        return self.outputs["TableName"]

    def subscribe_events(self, queue_name: str) -> str:
        """A new SQS queue subscribed to the events topic (raw delivery, as an app would subscribe); its URL."""
        sqs, sns = self.aws.client("sqs"), self.aws.client("sns")
        queue_url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=self.outputs["TopicArn"], Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )
        return queue_url

    def take_events(self, queue_url: str) -> list[dict[str, Any]]:
        """Every event queued now on a `subscribe_events` queue, removed from it."""
        sqs = self.aws.client("sqs")
        events: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return events
            for message in batch:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def create_api_key(self, tenant: str, limits: TenantLimits | None = None) -> NewKey:
        """A key for the tenant, provisioned as `kling-relay keys create` does (its tier's usage plan key, caps)."""
        repo = KeyRepository(self.table_name, self.aws.client("dynamodb"))
        plans = UsagePlans(self.aws.client("apigateway"))
        provision(
            repo,
            plans,
            plans.find_plans(STACK_NAME),
            tenant,
            limits or TenantLimits(),
            default_tier=self.outputs.get("DefaultTier", DEFAULT_TIER),
        )
        new = repo.create_key(tenant)
        tenant_record = repo.get_tenant(tenant)
        signing = self.aws.client("secretsmanager").get_secret_value(SecretId=self.outputs["SigningSecretName"])
        secret = SigningKeys(signing["SecretString"]).tenant_webhook_secret(
            tenant, tenant_record.webhook_secret_version if tenant_record else 1
        )
        return NewKey(tenant=tenant, api_key=new.api_key, webhook_secret=secret)

    def describe(self) -> dict[str, str | None]:
        assert self.emulator is not None
        return {
            "base_url": self.base_url,
            "aws_endpoint_url": self.aws.endpoint_url,
            "emulator_url": self.emulator.base_url,
            "console_url": self.console.url if self.console is not None else None,
        }
