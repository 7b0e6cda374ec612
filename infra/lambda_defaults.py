"""The one place Lambda defaults live: runtime, architecture, logging, tracing, layer, role per function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import layer_cache
from infra.bundling import FunctionSourceBundler, LayerBundler, layer_asset_hash
from infra.nag import acknowledge
from shared.observability import NAMESPACE, SERVICE
from shared.settings import env_name

RUNTIME = lambda_.Runtime.PYTHON_3_13
RUNTIME_REASON = (
    "The runtime is the Python minor version the test suite and benchmarks run on (the venv is built with it and "
    "a test keeps them equal), and the shipped bytecode is compiled by it; 3.14 is not available to build and test "
    "with here, so moving to it would ship Python nobody tested."
)
ARCHITECTURE = lambda_.Architecture.ARM_64

# The functions a caller waits on (API requests, the authorizer in front of them, provider callbacks): with
# `relay:snapstart`, they start from a snapshot of their initialized state instead of importing their code.
SNAPSTART_FUNCTIONS = frozenset({"api", "authorizer", "callback"})
# SnapStart applies to published versions only; callers invoke this alias, which follows the latest one.
LIVE_ALIAS = "live"

# Active tracing adds this statement to every function role.
XRAY_REASON = (
    "Active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level "
    "permissions in IAM, so their statement must name the resource *."
)

POWERTOOLS_ENVIRONMENT: Mapping[str, str] = {
    "POWERTOOLS_SERVICE_NAME": SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def handler_path(function: str) -> str:
    return f"functions.{function}.handler.lambda_handler"


def settings_environment(**values: str | int | tuple[str, ...]) -> dict[str, str]:
    """Environment variables for `shared.settings.Settings` fields, named by the settings module itself."""
    return {
        env_name(field): ",".join(value) if isinstance(value, tuple) else str(value) for field, value in values.items()
    }


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between our functions; everything else is a default of `LambdaDefaults`."""

    name: str  # package under functions/
    description: str
    memory_mb: int
    timeout: cdk.Duration
    environment: Mapping[str, str] = field(default_factory=dict)
    # Why else this role needs a statement on resource * (besides tracing), if it does.
    wildcard_reason: str = ""


class LambdaDefaults(Construct):
    """Owns the dependency layer and creates every function with the same defaults and its own role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repo_root: Path,
        log_retention: logs.RetentionDays,
        snapstart: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.repo_root = repo_root
        self.log_retention = log_retention
        self.snapstart = snapstart
        self._entry_points: dict[str, lambda_.IFunction] = {}
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="Third-party packages pinned in requirements/lambda.txt (boto3 comes from the runtime)",
            code=lambda_.Code.from_asset(
                str(repo_root / layer_cache.REQUIREMENTS.parent),
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                asset_hash=layer_asset_hash(repo_root),
                bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image, local=LayerBundler(repo_root)),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

    def create(self, scope: Construct, construct_id: str, spec: FunctionSpec) -> lambda_.Function:
        log_group = logs.LogGroup(
            scope, f"{construct_id}Logs", retention=self.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        # Each function gets its own role; callers add exactly the statements it needs.
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {spec.name} function",
        )
        log_group.grant_write(role)
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", f"{XRAY_REASON} {spec.wildcard_reason}".strip())
        snapstart = self.snapstart and spec.name in SNAPSTART_FUNCTIONS
        function = lambda_.Function(
            scope,
            construct_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler_path(spec.name),
            code=lambda_.Code.from_asset(
                str(self.repo_root),
                asset_hash_type=cdk.AssetHashType.OUTPUT,
                bundling=cdk.BundlingOptions(
                    image=RUNTIME.bundling_image,
                    local=FunctionSourceBundler(self.repo_root, spec.name),
                    # CDK caches bundles by source path and bundling options, and cannot see inside the local
                    # bundler: without a per-function option here every function would get the first bundle.
                    environment={"RELAY_FUNCTION": spec.name},
                ),
            ),
            layers=[self.layer],
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            environment={**POWERTOOLS_ENVIRONMENT, **spec.environment},
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            # Every published version keeps a cached snapshot, billed while it exists: a replaced one is deleted.
            current_version_options=(
                lambda_.VersionOptions(removal_policy=cdk.RemovalPolicy.DESTROY) if snapstart else None
            ),
        )
        acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
        if snapstart:
            self._entry_points[function.node.path] = lambda_.Alias(
                scope, f"{construct_id}Live", alias_name=LIVE_ALIAS, version=function.current_version
            )
            cdk.Annotations.of(function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "every deploy publishes a version, called through the alias",
            )
        return function

    def entry_point(self, function: lambda_.Function) -> lambda_.IFunction:
        """What callers invoke: the `live` alias of a SnapStart function's published version, else the function."""
        return self._entry_points.get(function.node.path, function)
