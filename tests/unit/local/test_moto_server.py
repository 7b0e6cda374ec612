"""The AWS emulator sets moto's process-wide configuration for local mode, and puts it back when it stops."""

from __future__ import annotations

from moto.core.config import default_user_config

from local.aws.moto_server import AwsEmulator


def settings() -> tuple[object, object]:
    return default_user_config["stepfunctions"]["execute_state_machine"], default_user_config["lambda"]["use_docker"]


def test_executing_state_machines_end_with_the_emulator() -> None:
    before = settings()
    emulator = AwsEmulator()
    emulator.start()
    try:
        assert default_user_config["stepfunctions"]["execute_state_machine"] is True
        assert default_user_config["lambda"]["use_docker"] is False
    finally:
        emulator.stop()

    # Unit tests that share the process with a local stack get moto as it is by default: executions that
    # do not run (and so cannot overwrite a stop), Lambda as configured.
    assert settings() == before
