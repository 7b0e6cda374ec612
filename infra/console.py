"""The web console: static files in a private bucket behind CloudFront (origin access control), with security
headers, and its config file (the API's base URL) written into the bucket by the deployment.

The console is plain ES modules with no build step (console/), so what is deployed is that folder as it is.
It calls the API from another origin (the API's execute-api host), so the API's CORS names this origin only.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from infra.config import RelayConfig
from infra.nag import acknowledge, logical_id
from infra.storage import Storage

CONSOLE_DIR = "console"
CONFIG_FILE = "config.json"
HSTS_MAX_AGE = cdk.Duration.days(730)
# Browsers revalidate every file (an ETag round trip), so a deploy is seen on the next load; CloudFront's copy
# is invalidated by the deployment itself.
CACHE_CONTROL = "no-cache"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def content_security_policy(*, api_origin: str, video_origins: list[str]) -> str:
    """Scripts and styles from the console's own files only (no inline code), the API for data, the video
    bucket for playback, nothing framing it; DOM sinks that take strings refuse them (Trusted Types)."""
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'", api_origin],
        "media-src": video_origins,
        "manifest-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "require-trusted-types-for": ["'script'"],
        "trusted-types": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def api_origin(rest_api: apigw.RestApi) -> str:
    return f"https://{rest_api.rest_api_id}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"


def video_origins(bucket: s3.IBucket) -> list[str]:
    """Presigned URLs name the bucket's global host in us-east-1 and its regional host elsewhere: allow both."""
    return [f"https://{bucket.bucket_domain_name}", f"https://{bucket.bucket_regional_domain_name}"]


class Console(Construct):
    """Call `publish(rest_api)` once the API exists: the CSP and the config file name it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: RelayConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self._videos = storage.bucket
        self.bucket = self._site_bucket(storage)
        self.log_bucket = self._cdn_log_bucket(config, storage)
        self.headers = self._headers_policy()
        self.distribution = self._distribution()

    @property
    def origin(self) -> str:
        """The console's origin, the one origin the API's CORS allows."""
        return f"https://{self.distribution.distribution_domain_name}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def publish(self, rest_api: apigw.RestApi, repo_root: Path, log_retention: logs.RetentionDays) -> None:
        """The CSP naming `rest_api`, and the files with a config file pointing at it, deployed into the bucket
        on every stack update."""
        self._name_the_api(rest_api)
        s3_deployment.BucketDeployment(
            self,
            "Files",
            destination_bucket=self.bucket,
            sources=[
                s3_deployment.Source.asset(str(repo_root / CONSOLE_DIR)),
                s3_deployment.Source.json_data(CONFIG_FILE, {"api_base_url": rest_api.url}),
            ],
            cache_control=[s3_deployment.CacheControl.from_string(CACHE_CONTROL)],
            prune=True,
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
            log_group=logs.LogGroup(
                self, "DeployLogs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
            ),
        )
        self._acknowledge_deployment()

    # -- parts -------------------------------------------------------------------------------------

    def _site_bucket(self, storage: Storage) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=storage.access_logs,
            server_access_logs_prefix="console/",
            # Only the deployment writes here, and it writes everything again on each stack update.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _cdn_log_bucket(self, config: RelayConfig, storage: Storage) -> s3.Bucket:
        # CloudFront's standard logs are delivered with an ACL grant, so this bucket alone keeps ACLs enabled.
        return s3.Bucket(
            self,
            "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=storage.access_logs,
            server_access_logs_prefix="console-cdn-logs/",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(config.log_retention_days))
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _name_the_api(self, rest_api: apigw.RestApi) -> None:
        # The policy exists before the API (the API's CORS needs the distribution's origin), so its CSP, which
        # names the API, is set on the CloudFormation resource once the API exists.
        policy = self.headers.node.default_child
        assert isinstance(policy, cloudfront.CfnResponseHeadersPolicy)
        csp = content_security_policy(api_origin=api_origin(rest_api), video_origins=video_origins(self._videos))
        policy.add_property_override(
            "ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy",
            {"ContentSecurityPolicy": csp, "Override": True},
        )

    def _headers_policy(self) -> cloudfront.ResponseHeadersPolicy:
        return cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="Kling Relay console: CSP without inline code, HSTS, no framing, no sniffing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, preload=False, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy", value=PERMISSIONS_POLICY, override=True
                    ),
                    cloudfront.ResponseCustomHeader(
                        header="Cross-Origin-Opener-Policy", value="same-origin", override=True
                    ),
                ]
            ),
        )

    def _distribution(self) -> cloudfront.Distribution:
        distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Kling Relay console",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    self.bucket, origin_access_levels=[cloudfront.AccessLevel.READ]
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="console/",
        )
        self._acknowledge_distribution(distribution)
        return distribution

    # -- cdk-nag -----------------------------------------------------------------------------------

    def _acknowledge_distribution(self, distribution: cloudfront.Distribution) -> None:
        acknowledge(
            distribution,
            "AwsSolutions-CFR4",
            "The console is served on CloudFront's own cloudfront.net name, whose certificate CloudFront manages "
            "and whose minimum viewer TLS version cannot be raised; a custom domain with its own certificate "
            "would allow TLSv1.2_2021. Browsers that load the console negotiate TLS 1.2 or 1.3 anyway.",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR2",
            "The distribution serves only the console's static files, read-only (GET and HEAD), holding no "
            "data and no secret; a web ACL would cost a fixed monthly fee for no protected asset. The API "
            "the console calls is protected at its own stage.",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR1",
            "The console is for the API's tenants wherever they are; the files it serves are public code with "
            "no data, so a geographic restriction would block users without protecting anything.",
        )

    def _acknowledge_deployment(self) -> None:
        stack = cdk.Stack.of(self)
        handler = next(
            child
            for child in stack.node.children
            if child.node.id.startswith("Custom::CDKBucketDeployment") and isinstance(child, Construct)
        )
        acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "The CDK's bucket deployment function writes its own logs with the AWS-managed basic execution "
            "policy; it runs only during stack updates, to copy the console's files into its bucket.",
        )
        copy_reason = (
            "The CDK's bucket deployment function copies every file of the console from the CDK asset bucket "
            "into the console bucket and prunes what is gone; the keys are the console's files, so object "
            "actions name every key of those two buckets, and nothing else."
        )
        for finding in (
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            f"Resource::<{logical_id(self.bucket)}.Arn>/*",
        ):
            acknowledge(handler, f"AwsSolutions-IAM5[{finding}]", copy_reason)
        acknowledge(
            handler,
            "AwsSolutions-IAM5[Resource::*]",
            "After copying, the CDK's bucket deployment function invalidates the console's cached files; the "
            "construct grants CreateInvalidation and GetInvalidation on every distribution, and the function "
            "only ever invalidates the one distribution named in its deployment's properties.",
        )
        acknowledge(
            handler,
            "AwsSolutions-L1",
            "The CDK's bucket deployment function pins its own Python runtime with its bundled AWS CLI layer; "
            "it runs only during deployments and takes no input from the API's callers.",
        )
