"""Every function: shared defaults from one factory, its own sizing, and exactly the settings it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra import bytecode, layer_cache
from infra.lambda_defaults import RUNTIME, handler_path
from shared.settings import Settings, env_name
from tests.infra.synth import FUNCTIONS, Synth, synthesize

POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "kling-relay",
    "POWERTOOLS_METRICS_NAMESPACE": "KlingRelay",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
SIZING = {  # name: (memory MB, timeout s)
    "api": (512, 29),
    "authorizer": (256, 10),
    "callback": (256, 15),
    "dispatch": (256, 150),
    "poll": (256, 60),
    "archive": (512, 900),
    "notify": (256, 30),
    "deliver": (256, 30),
}
SETTINGS_READ = {
    "api": {
        "table_name",
        "bucket_name",
        "state_machine_arn",
        "provider_secret_name",
        "signing_secret_name",
        "provider_order",
        "enabled_providers",
        "job_deadline_seconds",
        "job_retention_days",
        "cors_allow_origin",
        "tenant_tiers",
        "default_tier",
    },
    "authorizer": {"table_name"},
    "callback": {
        "table_name",
        "provider_secret_name",
        "signing_secret_name",
        "enabled_providers",
        "job_deadline_seconds",
        "job_retention_days",
    },
    "dispatch": {
        "table_name",
        "provider_secret_name",
        "signing_secret_name",
        "provider_order",
        "enabled_providers",
        "job_deadline_seconds",
        "job_retention_days",
        "provider_limits",
    },
    "poll": {"table_name", "provider_secret_name", "enabled_providers", "job_deadline_seconds", "job_retention_days"},
    "archive": {"table_name", "bucket_name", "max_video_bytes", "job_retention_days"},
    "notify": {"topic_arn", "table_name"},
    "deliver": {"table_name", "signing_secret_name"},
}


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


def test_the_layer_is_built_for_the_functions_runtime() -> None:
    assert RUNTIME.name == f"python{bytecode.PYTHON_VERSION}"
    assert layer_cache.PLATFORM.endswith("aarch64")


def test_tests_run_on_the_python_the_functions_run(synth: Synth) -> None:
    functions = synth.of_type("AWS::Lambda::Function").values()
    runtimes = {function["Properties"]["Runtime"] for function in functions}
    running = "python{}.{}".format(*sys.version_info[:2])
    assert runtimes == {running}, (
        f"the functions run {sorted(runtimes)} but the tests run {running}: "
        "build the venv with the runtime's Python (make clean && make install)"
    )
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"PYTHON_MINOR := {bytecode.PYTHON_VERSION}\n" in makefile


def test_seven_functions_and_nothing_hard_named(synth: Synth) -> None:
    functions = synth.of_type("AWS::Lambda::Function")
    console_deployment = synth.console_deployment_function_id()

    ours = [v["Properties"]["Handler"] for k, v in functions.items() if k != console_deployment]
    assert sorted(ours) == sorted(map(handler_path, FUNCTIONS))
    for props in (v["Properties"] for v in functions.values()):
        assert "FunctionName" not in props
    for cfn_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::SQS::Queue"):
        for resource in synth.of_type(cfn_type).values():
            assert not {"TableName", "BucketName", "TopicName", "QueueName"} & set(resource["Properties"])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_defaults(synth: Synth, name: str) -> None:
    props = synth.function(name)
    layer_id = next(iter(synth.of_type("AWS::Lambda::LayerVersion")))

    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Layers"] == [{"Ref": layer_id}]
    assert (props["MemorySize"], props["Timeout"]) == SIZING[name]
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == "INFO"
    log_group = synth.resources[logging["LogGroup"]["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment_is_powertools_plus_the_settings_the_function_reads(synth: Synth, name: str) -> None:
    variables = synth.environment(name)

    expected = set(POWERTOOLS) | {env_name(field) for field in SETTINGS_READ[name]}
    assert set(variables) == expected
    assert {k: variables[k] for k in POWERTOOLS} == POWERTOOLS
    # The literal values (not references to resources) are ones the function's settings model accepts.
    literal = {f: variables[env_name(f)] for f in SETTINGS_READ[name] if isinstance(variables[env_name(f)], str)}
    Settings(**literal)


def test_settings_values_point_at_the_stacks_resources(synth: Synth) -> None:
    stack = synth.stack
    api = synth.environment("api")

    assert api[env_name("table_name")] == {"Ref": synth.logical_id(stack.storage.table)}
    assert api[env_name("bucket_name")] == {"Ref": synth.logical_id(stack.storage.bucket)}
    assert api[env_name("state_machine_arn")] == {"Ref": synth.logical_id(stack.workflow.state_machine)}
    assert api[env_name("provider_order")] == "vidgo,kie,aimlapi,pixwith,apimart"
    assert api[env_name("job_deadline_seconds")] == "3600"
    assert synth.environment("notify")[env_name("topic_arn")] == {
        "Ref": synth.logical_id(stack.notifications.events_topic)
    }
    assert synth.environment("archive")[env_name("max_video_bytes")] == str(2 * 1024**3)
    # Secret names are derived from the secrets' ARNs (no physical names in the template).
    provider_secret = synth.logical_id(stack.secrets.provider_keys)
    assert provider_secret in str(api[env_name("provider_secret_name")])
    assert synth.logical_id(stack.secrets.signing_key) in str(
        synth.environment("deliver")[env_name("signing_secret_name")]
    )


def test_dependency_layer_targets_the_functions_platform(synth: Synth) -> None:
    layer = synth.resources[synth.function("api")["Layers"][0]["Ref"]]

    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_log_groups_are_plain_resources(synth: Synth) -> None:
    types = {v["Type"] for v in synth.resources.values()}

    # No log-retention or auto-delete custom resources: the template deploys into moto's CloudFormation too.
    # The one custom resource copies the console's files into its bucket; local mode serves them itself.
    assert [t for t in types if t.startswith("Custom::")] == ["Custom::CDKBucketDeployment"]
    assert "AWS::CloudFormation::CustomResource" not in types
    for log_group in synth.of_type("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 30
