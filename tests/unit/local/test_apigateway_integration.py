"""The real synthesized REST API, deployed into an in-process moto server and served over HTTP."""

from __future__ import annotations

import io
import logging
import os
import socket
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infra.names import STACK_NAME
from local.aws.apigateway import ApiGatewayAdapter
from local.aws.deploy import StackDeployer
from local.aws.lambdas import FunctionHost, FunctionRegistry, deployed_functions
from local.aws.template import Template
from shared.gateways.usage_plans import UsagePlans
from shared.repository.keys import KeyRepository, TenantLimits
from shared.services.tenants import provision

pytestmark = pytest.mark.slow

LOCAL_SETTINGS = {"KR_LOCAL_MODE": "true", "KR_POLL_MIN_WAIT_SECONDS": "1", "KR_POLL_MAX_WAIT_SECONDS": "2"}


@pytest.fixture(scope="session")
def synthesized_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from infra.build import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = build_app(context={"aws:cdk:bundling-stacks": []}, nag=False, outdir=str(outdir))
    app.synth()
    return outdir / "KlingRelay.template.json"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _placeholder_assets(template: Template) -> dict[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.txt", "handlers run from this checkout")
    keys = {
        resource.get("Properties", {}).get(prop, {}).get("S3Key")
        for resource in template.resources.values()
        for prop in ("Code", "Content")
        if isinstance(resource.get("Properties", {}).get(prop), dict)
    }
    return {key: buffer.getvalue() for key in keys if isinstance(key, str)}


def _registry(template: Template, deployer: StackDeployer) -> FunctionRegistry:
    registry = FunctionRegistry()
    for spec in deployed_functions(template, deployer):
        registry.add(FunctionHost(spec, LOCAL_SETTINGS))
    return registry


@dataclass
class LocalApi:
    url: str
    table_name: str
    registry: FunctionRegistry
    console_origin: str  # the stand-in distribution's, as the template's CORS names it


@pytest.fixture(scope="module")
def local_api(synthesized_template: Path) -> Iterator[LocalApi]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        try:
            httpx.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
            template = Template.load(synthesized_template)
            clients: dict[str, Any] = {}

            def client(service: str) -> Any:
                if service not in clients:
                    clients[service] = boto3.client(service, endpoint_url=endpoint)
                return clients[service]

            deployer = StackDeployer(template, client)
            deployer.deploy(_placeholder_assets(template))
            registry = _registry(template, deployer)
            adapter = ApiGatewayAdapter(template, deployer.resolve, registry)
            url = adapter.start()
            try:
                console_origin = deployer.outputs()["ConsoleUrl"].rstrip("/")
                yield LocalApi(url, deployer.outputs()["TableName"], registry, console_origin)
            finally:
                adapter.stop()
        finally:
            server.stop()
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_the_deployed_api_answers_as_on_aws(local_api: LocalApi) -> None:
    with httpx.Client(base_url=local_api.url, timeout=30) as http:
        no_key = http.get("/jobs")
        assert no_key.status_code == 401
        assert no_key.json() == {"error": {"code": "unauthorized", "message": "Unauthorized"}}

        providers = http.get("/providers")
        assert providers.status_code == 200
        assert providers.headers["Content-Type"].startswith("application/json")
        assert isinstance(providers.json(), dict | list)

        openapi = http.get("/openapi.json")
        assert openapi.status_code == 200
        assert openapi.json()["openapi"].startswith("3.")

        unknown = http.get("/no/such/route")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": {"code": "not_found", "message": "no such route"}}

        # With the console deployed, every preflight names its origin (and only it), as do the gateway's errors.
        preflight = http.options("/providers", headers={"Origin": local_api.console_origin})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == local_api.console_origin
        assert preflight.headers["Access-Control-Allow-Methods"] == "GET,POST"
        assert no_key.headers["Access-Control-Allow-Origin"] == local_api.console_origin

        repo = KeyRepository(local_api.table_name)
        unprovisioned = repo.create_key("no-plan").api_key
        forbidden = http.get("/jobs", headers={"Authorization": f"Bearer {unprovisioned}"})
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json() == {"error": {"code": "forbidden", "message": "this tenant has no usage plan"}}

        plans = UsagePlans(boto3.client("apigateway"))
        provision(repo, plans, plans.find_plans(STACK_NAME), "t", TenantLimits(), default_tier="standard")
        key = repo.create_key("t").api_key
        invalid = http.post(
            "/jobs", json={"provider": "no-such-provider", "prompt": ""}, headers={"Authorization": f"Bearer {key}"}
        )
        assert invalid.status_code == 422, invalid.text
        assert invalid.json()["error"]["code"] == "validation_error"

        not_an_object = http.post("/jobs", json=["a list"], headers={"Authorization": f"Bearer {key}"})
        assert not_an_object.status_code == 400
        assert not_an_object.json()["error"]["code"] == "validation_error"

    authorizer = local_api.registry.by_short_name("authorizer")
    # One per key: the third keyed request was served from the authorizer cache.
    assert authorizer.invocations == 2
