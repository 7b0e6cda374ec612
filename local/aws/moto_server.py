"""The AWS emulator: a moto server inside this process, on 127.0.0.1 and a free port.

It runs in this process so Step Functions tasks can call back into the real handler code (see
`local.aws.lambdas`). State machines execute; Lambda never needs Docker.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
from botocore.config import Config

from local.aws.moto_patches import atomic_dynamodb_writes, serve_usage_plan_usage
from local.aws.moto_speedups import load_service_models, speed_up_moto_server
from local.aws.template import REGION
from local.environment import override_environment

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # moto serves DynamoDB Streams only on the plain regional endpoint.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
# What the stack's functions, its Step Functions tasks (Lambda) and local mode's drivers call.
SERVICES = (
    "apigateway",
    "dynamodb",
    "dynamodbstreams",
    "lambda",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "stepfunctions",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class AwsEmulator:
    port: int = 0
    endpoint_url: str = ""
    _server: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _restore_environment: Callable[[], None] | None = None
    _config_before: dict[str, Any] = field(default_factory=dict)

    def start(self) -> str:
        """Start moto and point this process's AWS SDK at it (endpoint and fake credentials)."""
        from moto.server import ThreadedMotoServer

        atomic_dynamodb_writes()
        serve_usage_plan_usage()
        speed_up_moto_server()
        load_service_models(SERVICES)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = self.port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        settings = {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "MOTO_PORT": str(self.port),  # where moto's Step Functions interpreter calls Lambda
        }
        self._restore_environment = override_environment(settings)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self._config_before = self._set_config(
            {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        return self.endpoint_url

    def _set_config(self, config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Set moto's configuration, which is process-wide; what the same keys held before, to put back."""
        from moto.core.config import default_user_config

        current: dict[str, dict[str, Any]] = dict(default_user_config)  # type: ignore[arg-type]
        before = {service: {key: current[service][key] for key in keys} for service, keys in config.items()}
        httpx.post(f"{self.endpoint_url}/moto-api/config", json=config, timeout=10).raise_for_status()
        return before

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._clients[service]

    @property
    def clients(self) -> Callable[[str], Any]:
        return self.client

    def stop(self) -> None:
        """Stop moto, forget its state (moto keeps it process-wide) and restore the environment."""
        if self._server is not None:
            # Executing state machines and the rest stop with this emulator: other moto users in the process
            # (unit tests on the same worker) get moto as they expect it.
            self._set_config(self._config_before)
            httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
            self._server.stop()
            self._server = None
        if self._restore_environment is not None:
            self._restore_environment()
            self._restore_environment = None
        self._clients.clear()
