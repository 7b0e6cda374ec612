"""The console: private bucket behind CloudFront with origin access control, security headers, its files and
config deployed by the stack, its URL an output, and the API's CORS limited to its origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.console import CONFIG_FILE, CONSOLE_DIR
from shared.apigw import CORS_REQUEST_HEADERS
from shared.settings import env_name
from tests.infra.synth import Synth, render, synthesize
from tests.infra.test_api import methods

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth() -> Synth:
    return synthesize()


@pytest.fixture(scope="module")
def ids(synth: Synth) -> dict[str, str]:
    console = synth.stack.console
    assert console is not None
    return {
        "site": synth.logical_id(console.bucket),
        "logs": synth.logical_id(console.log_bucket),
        "distribution": synth.logical_id(console.distribution),
        "headers": synth.logical_id(console.headers),
        "rest_api": synth.logical_id(synth.stack.api.rest_api),
        "videos": synth.logical_id(synth.stack.storage.bucket),
    }


def distribution_config(synth: Synth, ids: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = synth.resources[ids["distribution"]]["Properties"]["DistributionConfig"]
    return config


def headers_config(synth: Synth, ids: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = synth.resources[ids["headers"]]["Properties"]["ResponseHeadersPolicyConfig"]
    return config


def console_origin(ids: dict[str, str]) -> str:
    return f"https://<{ids['distribution']}.DomainName>"


def test_the_bucket_is_private_encrypted_tls_only_and_logged(synth: Synth, ids: dict[str, str]) -> None:
    props = synth.resources[ids["site"]]["Properties"]

    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "console/"
    assert "WebsiteConfiguration" not in props


def test_only_this_distribution_reads_the_bucket(synth: Synth, ids: dict[str, str]) -> None:
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": ids["site"]}
    ]
    allows = [s for s in policy if s["Effect"] == "Allow"]
    denials = [s["Condition"] for s in policy if s["Effect"] == "Deny"]

    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source = render(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert source.endswith(f":distribution/<{ids['distribution']}>")
    assert {"Bool": {"aws:SecureTransport": "false"}} in denials


def test_the_distribution_uses_origin_access_control_https_and_the_headers(synth: Synth, ids: dict[str, str]) -> None:
    config = distribution_config(synth, ids)
    (origin,) = config["Origins"]
    (oac,) = synth.of_type("AWS::CloudFront::OriginAccessControl").values()
    behavior = config["DefaultCacheBehavior"]

    assert origin["DomainName"] == {"Fn::GetAtt": [ids["site"], "RegionalDomainName"]}
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy identity
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": ids["headers"]}
    assert config["DefaultRootObject"] == "index.html"
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": [ids["logs"], "RegionalDomainName"]}


def test_cdn_logs_go_to_a_bucket_of_their_own_that_expires_them(synth: Synth, ids: dict[str, str]) -> None:
    props = synth.resources[ids["logs"]]["Properties"]

    # CloudFront's standard logs are written with an ACL grant: only this bucket keeps ACLs enabled.
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    assert props["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert props["LifecycleConfiguration"]["Rules"] == [
        {"ExpirationInDays": 30, "Id": "expire-logs", "Status": "Enabled"}
    ]


def test_security_headers(synth: Synth, ids: dict[str, str]) -> None:
    security = headers_config(synth, ids)["SecurityHeadersConfig"]
    custom = {h["Header"]: h["Value"] for h in headers_config(synth, ids)["CustomHeadersConfig"]["Items"]}

    hsts = security["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] >= 365 * 86_400
    assert hsts["IncludeSubdomains"] is True
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ContentTypeOptions"]["Override"] is True
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert custom["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in custom["Permissions-Policy"]
    for header in security.values():
        assert header["Override"] is True  # an origin header never weakens them


def test_the_csp_allows_no_inline_code_and_names_the_api_and_the_video_bucket(
    synth: Synth, ids: dict[str, str]
) -> None:
    csp = render(headers_config(synth, ids)["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = {part.split()[0]: part.split()[1:] for part in csp.split("; ")}

    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == [
        "'self'",
        f"https://<{ids['rest_api']}>.execute-api.<AWS::Region>.<AWS::URLSuffix>",
    ]
    assert directives["media-src"] == [
        f"https://<{ids['videos']}.DomainName>",
        f"https://<{ids['videos']}.RegionalDomainName>",
    ]
    assert directives["require-trusted-types-for"] == ["'script'"]
    assert directives["form-action"] == ["'none'"]


def test_the_stack_deploys_the_files_and_a_config_file_naming_the_api(synth: Synth, ids: dict[str, str]) -> None:
    (deployment,) = synth.of_type("Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    markers = [render(value) for marker in props["SourceMarkers"] for value in marker.values()]

    assert props["DestinationBucketName"] == {"Ref": ids["site"]}
    assert len(props["SourceObjectKeys"]) == 2  # the console folder and config.json
    assert props["Prune"] is True
    assert props["DistributionId"] == {"Ref": ids["distribution"]}
    assert props["DistributionPaths"] == ["/*"]
    assert props["SystemMetadata"] == {"cache-control": "no-cache"}
    assert markers == [
        f'"https://<{ids["rest_api"]}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/<'
        + synth.logical_id(synth.stack.api.rest_api.deployment_stage)
        + '>/"'
    ]


def test_the_deployed_folder_is_the_console_itself() -> None:
    folder = ROOT / CONSOLE_DIR

    assert (folder / "index.html").is_file()
    assert not (folder / CONFIG_FILE).exists()  # written by the deployment (or by local mode), never committed
    sources = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in sources if p.suffix not in {".html", ".css", ".js", ".svg"}]


def test_the_console_url_is_an_output(synth: Synth, ids: dict[str, str]) -> None:
    output = synth.json["Outputs"]["ConsoleUrl"]

    assert render(output["Value"]) == console_origin(ids) + "/"


def test_the_api_allows_the_console_origin_only(synth: Synth, ids: dict[str, str]) -> None:
    origin = console_origin(ids)

    assert render(synth.environment("api")[env_name("cors_allow_origin")]) == origin


def test_every_route_answers_the_console_preflight_and_only_it(synth: Synth, ids: dict[str, str]) -> None:
    found = methods(synth)
    routes = {path for (verb, path) in found if verb != "OPTIONS"}
    preflights = {path: m for (verb, path), m in found.items() if verb == "OPTIONS"}

    # Every route, the root, and a catch-all so that a route the API lacks (GET /usage) is a readable 404.
    assert routes | {"/", "/{proxy+}"} <= set(preflights)
    assert [verb for (verb, path) in found if path == "/{proxy+}"] == ["OPTIONS"]
    for path, method in preflights.items():
        assert method["AuthorizationType"] == "NONE", path
        (response,) = method["Integration"]["IntegrationResponses"]
        headers = {k.rsplit(".", 1)[-1]: render(v) for k, v in response["ResponseParameters"].items()}
        assert headers["Access-Control-Allow-Origin"] == f"'{console_origin(ids)}'", path
        assert headers["Vary"] == "'Origin'"
        assert set(headers["Access-Control-Allow-Headers"].strip("'").split(",")) == set(CORS_REQUEST_HEADERS)
        assert set(headers["Access-Control-Allow-Methods"].strip("'").split(",")) == {"GET", "POST"}


def test_gateway_errors_carry_the_console_origin(synth: Synth, ids: dict[str, str]) -> None:
    responses = synth.of_type("AWS::ApiGateway::GatewayResponse").values()

    for response in responses:
        params = response["Properties"]["ResponseParameters"]
        assert render(params["gatewayresponse.header.Access-Control-Allow-Origin"]) == f"'{console_origin(ids)}'"
        assert json.dumps(params["gatewayresponse.header.Vary"]) == json.dumps("'Origin'")
