"""The console's distribution served locally: files from the folder only, config.json naming the local API,
and the template's response headers policy with deployed origins swapped for local ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.aws.cloudfront import ConsoleDistribution, policy_headers
from local.aws.template import Resolver, Template, UnresolvableError

CSP = {
    "Fn::Join": [
        "",
        ["default-src 'none'; connect-src 'self' https://", {"Ref": "Api"}, ".execute-api.example.com"],
    ]
}


def template() -> Template:
    return Template(
        {
            "Resources": {
                "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
                "Headers": {
                    "Type": "AWS::CloudFront::ResponseHeadersPolicy",
                    "Properties": {
                        "ResponseHeadersPolicyConfig": {
                            "SecurityHeadersConfig": {
                                "ContentSecurityPolicy": {"ContentSecurityPolicy": CSP, "Override": True},
                                "StrictTransportSecurity": {
                                    "AccessControlMaxAgeSec": 100,
                                    "IncludeSubdomains": True,
                                    "Override": True,
                                },
                                "FrameOptions": {"FrameOption": "DENY", "Override": True},
                                "ContentTypeOptions": {"Override": True},
                                "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
                            },
                            "CustomHeadersConfig": {
                                "Items": [{"Header": "Permissions-Policy", "Value": "camera=()", "Override": True}]
                            },
                        }
                    },
                },
                "Distribution": {
                    "Type": "AWS::CloudFront::Distribution",
                    "Properties": {
                        "DistributionConfig": {
                            "DefaultRootObject": "index.html",
                            "DefaultCacheBehavior": {"ResponseHeadersPolicyId": {"Ref": "Headers"}},
                        }
                    },
                },
            }
        }
    )


def resolver() -> Resolver:
    def ref(name: str) -> Any:
        if name == "Api":
            return "abc123"
        raise UnresolvableError(name)

    def att(name: str, attribute: str) -> Any:
        raise UnresolvableError(name)

    return Resolver(ref, att)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ConsoleDistribution]:
    folder = tmp_path / "console"
    (folder / "js").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>console</title>")
    (folder / "js" / "app.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("outside the folder")
    served = ConsoleDistribution(template(), folder)
    served.start()
    aliases = {"https://abc123.execute-api.example.com": "http://127.0.0.1:9999"}
    served.configure(api_base_url="http://127.0.0.1:9999/v1", headers=policy_headers(template(), resolver(), aliases))
    yield served
    served.stop()


def test_the_root_is_the_default_root_object_with_the_policy_headers(site: ConsoleDistribution) -> None:
    answer = httpx.get(site.url)

    assert answer.status_code == 200
    assert answer.text.startswith("<!doctype html>")
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == "default-src 'none'; connect-src 'self' http://127.0.0.1:9999"
    assert answer.headers["strict-transport-security"] == "max-age=100; includeSubDomains"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["permissions-policy"] == "camera=()"
    assert answer.headers["cache-control"] == "no-cache"


def test_modules_are_served_as_javascript(site: ConsoleDistribution) -> None:
    answer = httpx.get(f"{site.url}js/app.js")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in answer.headers


def test_config_names_the_local_api(site: ConsoleDistribution) -> None:
    assert httpx.get(f"{site.url}config.json").json() == {"api_base_url": "http://127.0.0.1:9999/v1/"}


@pytest.mark.parametrize("path", ["../secret.txt", "%2e%2e/secret.txt", "js/../../secret.txt", "missing.js", "js"])
def test_nothing_outside_the_folder_and_no_listing(site: ConsoleDistribution, path: str) -> None:
    with httpx.Client() as http:
        request = http.build_request("GET", site.url)
        request.url = request.url.copy_with(raw_path=f"/{path}".encode())
        answer = http.send(request)

    assert answer.status_code == 404
    assert "outside the folder" not in answer.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head(site: ConsoleDistribution, method: str) -> None:
    assert httpx.request(method, site.url).status_code == 403
    assert httpx.head(site.url).status_code == 200
