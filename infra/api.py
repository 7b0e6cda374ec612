"""The public REST API (stage `v1`): app routes behind the API-key authorizer, open provider callbacks."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import grants
from infra.config import RelayConfig
from infra.lambda_defaults import FunctionSpec, LambdaDefaults, settings_environment
from infra.nag import acknowledge, logical_id
from infra.secrets import Secrets
from infra.storage import ARCHIVE_PREFIX, Storage
from shared.apigw import CORS_REQUEST_HEADERS
from shared.models.tiers import usage_plan_name
from shared.settings import env_name

STAGE_NAME = "v1"
PUBLIC_GET_PATHS = ("providers", "openapi.json")
CALLBACK_PATH = "/callbacks/{provider}/{job_id}"

# Errors API Gateway answers itself, in the same {"error": {...}} shape our functions use.
# $context.error.messageString is API Gateway's own message, already a quoted JSON string.
_GATEWAY_MESSAGE = "$context.error.messageString"
_GATEWAY_ERRORS: tuple[tuple[apigw.ResponseType, str, str | None, str], ...] = (
    (apigw.ResponseType.UNAUTHORIZED, "unauthorized", None, _GATEWAY_MESSAGE),
    (apigw.ResponseType.ACCESS_DENIED, "forbidden", None, _GATEWAY_MESSAGE),
    # The body model only requires a JSON object; the api function names any bad field itself.
    (apigw.ResponseType.BAD_REQUEST_BODY, "validation_error", None, '"the request body must be a JSON object"'),
    (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "bad_request", None, _GATEWAY_MESSAGE),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "payload_too_large", None, _GATEWAY_MESSAGE),
    (apigw.ResponseType.THROTTLED, "throttled", None, _GATEWAY_MESSAGE),
    # The tenant's usage plan: its monthly request quota is used up, or the tenant has no usage plan key.
    (apigw.ResponseType.QUOTA_EXCEEDED, "rate_limited", None, '"the monthly request quota of this tenant is used up"'),
    (apigw.ResponseType.INVALID_API_KEY, "forbidden", None, '"this tenant has no usage plan"'),
    # An unknown route is reported by API Gateway as a missing token (403); it is a 404 to callers.
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "not_found", "404", '"no such route"'),
    (apigw.ResponseType.DEFAULT_4_XX, "bad_request", None, _GATEWAY_MESSAGE),
    (apigw.ResponseType.DEFAULT_5_XX, "internal_error", None, _GATEWAY_MESSAGE),
)


def _error_template(code: str, message: str) -> str:
    return '{"error": {"code": "' + code + '", "message": ' + message + "}}"


def _access_log_format() -> apigw.AccessLogFormat:
    field = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": field.context_request_id(),
                "time": field.context_request_time(),
                "ip": field.context_identity_source_ip(),
                "method": field.context_http_method(),
                "resource": field.context_resource_path(),
                "status": field.context_status(),
                "length": field.context_response_length(),
                "latencyMs": field.context_response_latency(),
                "integrationLatencyMs": field.context_integration_latency(),
                "tenant": field.context_authorizer_principal_id(),
                "authorizerStatus": field.context_authorizer_status(),
                "error": field.context_error_message(),
                "errorType": field.context_error_response_type(),
                "xrayTraceId": field.context_xray_trace_id(),
            }
        )
    )


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        lambdas: LambdaDefaults,
        storage: Storage,
        secrets: Secrets,
        state_machine: sfn.StateMachine,
        console_origin: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # With a console, browsers may call the API from its origin only; without one, as before: the public
        # read routes from anywhere, nothing else from a browser.
        self.console_origin = console_origin
        self.api_function = self._api_function(config, lambdas, storage, secrets, state_machine)
        if console_origin:
            self.api_function.add_environment(env_name("cors_allow_origin"), console_origin)
        self.authorizer_function = self._authorizer_function(lambdas, storage)
        self.callback_function = self._callback_function(config, lambdas, storage, secrets)
        # What API Gateway invokes: each function, or with SnapStart the published version behind its alias.
        self.api_entry, self.authorizer_entry, self.callback_entry = (
            lambdas.entry_point(f) for f in (self.api_function, self.authorizer_function, self.callback_function)
        )
        self.rest_api = self._rest_api(config)
        self.usage_plans = self._usage_plans(config)
        self._routes(config)
        self._acknowledge(config)

    def _api_function(
        self,
        config: RelayConfig,
        lambdas: LambdaDefaults,
        storage: Storage,
        secrets: Secrets,
        state_machine: sfn.StateMachine,
    ) -> lambda_.Function:
        table, bucket = storage.table, storage.bucket
        function = lambdas.create(
            self,
            "ApiFunction",
            FunctionSpec(
                name="api",
                description="Jobs API: submit, get, list, cancel; providers; OpenAPI",
                memory_mb=512,
                timeout=cdk.Duration.seconds(29),
                environment=settings_environment(
                    table_name=table.table_name,
                    bucket_name=bucket.bucket_name,
                    state_machine_arn=state_machine.state_machine_arn,
                    provider_secret_name=secrets.provider_keys.secret_name,
                    signing_secret_name=secrets.signing_key.secret_name,
                    provider_order=config.provider_order,
                    enabled_providers=config.enabled_providers,
                    job_deadline_seconds=config.job_deadline_seconds,
                    job_retention_days=config.job_retention_days,
                    tenant_tiers=json.dumps(
                        {name: tier.model_dump(mode="json") for name, tier in config.tenant_tiers.items()}
                    ),
                    default_tier=config.default_tier,
                ),
            ),
        )
        grants.table_items(function, table, "api")
        grants.owner_index_query(function, table)
        grants.status_index_query(function, table)
        grants.allow(function, ["states:StartExecution"], [state_machine.state_machine_arn])
        grants.allow(function, ["states:StopExecution"], [grants.executions_arn(state_machine)])
        grants.read_secrets(function, secrets.provider_keys, secrets.signing_key)
        grants.objects(function, bucket, ARCHIVE_PREFIX, "GetObject")  # presigned download URLs
        acknowledge(
            grants.role_of(function),
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"<{logical_id(state_machine)}.Name>:*]",
            "Cancel stops the poller execution of one job; executions are named by job id, "
            "which is unknown at deploy time, so the ARN ends in * but names only this state machine.",
        )
        acknowledge(
            grants.role_of(function),
            f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{ARCHIVE_PREFIX}*]",
            "Presigned download URLs for archived videos: object keys are per job and unknown at deploy time; "
            "the grant is s3:GetObject only, under the archive prefix only.",
        )
        return function

    def _authorizer_function(self, lambdas: LambdaDefaults, storage: Storage) -> lambda_.Function:
        function = lambdas.create(
            self,
            "AuthorizerFunction",
            FunctionSpec(
                name="authorizer",
                description="API-key authorizer: Bearer key -> tenant",
                memory_mb=256,
                timeout=cdk.Duration.seconds(10),
                environment=settings_environment(table_name=storage.table.table_name),
            ),
        )
        grants.table_items(function, storage.table, "authorizer")
        return function

    def _callback_function(
        self, config: RelayConfig, lambdas: LambdaDefaults, storage: Storage, secrets: Secrets
    ) -> lambda_.Function:
        function = lambdas.create(
            self,
            "CallbackFunction",
            FunctionSpec(
                name="callback",
                description="Provider callbacks: verify, re-check, apply the status change",
                memory_mb=256,
                timeout=cdk.Duration.seconds(15),
                environment=settings_environment(
                    table_name=storage.table.table_name,
                    provider_secret_name=secrets.provider_keys.secret_name,
                    signing_secret_name=secrets.signing_key.secret_name,
                    enabled_providers=config.enabled_providers,
                    job_deadline_seconds=config.job_deadline_seconds,
                    job_retention_days=config.job_retention_days,
                ),
            ),
        )
        grants.table_items(function, storage.table, "callback")
        grants.read_secrets(function, secrets.provider_keys, secrets.signing_key)
        return function

    def _rest_api(self, config: RelayConfig) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        api = apigw.RestApi(
            self,
            "RestApi",
            description="Kling Relay: one API over several Kling 2.6 video providers",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=config.api_cloudwatch_role,
            # Shared by every REST API in the account and region: deleting this stack must not take it away.
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN if config.api_cloudwatch_role else None,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request logs would hold API keys and provider payloads
                tracing_enabled=True,
                throttling_rate_limit=config.api_throttle_rate,
                throttling_burst_limit=config.api_throttle_burst,
                # Each method has its own bucket at the stage's rate; the callback route's is lower.
                method_options={
                    f"{CALLBACK_PATH}/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=config.callback_throttle_rate,
                        throttling_burst_limit=config.callback_throttle_burst,
                        # A method's own settings replace the stage's for that method: repeat what stays the same.
                        logging_level=apigw.MethodLoggingLevel.ERROR,
                        data_trace_enabled=False,
                    )
                },
            ),
            # Every resource (and any added later) answers the console's preflight; None without a console.
            default_cors_preflight_options=self._console_cors(),
            # The authorizer names each request's usage plan key (the tenant's), so callers send only their own.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
        )
        # API Gateway would create the execution log group itself, without retention; own it instead.
        execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{api.rest_api_id}/{STAGE_NAME}",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        api.deployment_stage.node.add_dependency(execution_logs)
        # The console must read API Gateway's own errors too (a bad key's 401), so they carry its CORS origin.
        cors_headers = {"Access-Control-Allow-Origin": f"'{self.console_origin}'", "Vary": "'Origin'"}
        for response_type, code, status, message in _GATEWAY_ERRORS:
            api.add_gateway_response(
                f"Error{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers=cors_headers if self.console_origin else None,
                templates={"application/json": _error_template(code, message)},
            )
        # RestApi adds its own URL output; the stack exports it once, as ApiUrl.
        api.node.try_remove_child("Endpoint")
        return api

    def _usage_plans(self, config: RelayConfig) -> dict[str, apigw.UsagePlan]:
        """One usage plan per tenant tier on the stage: its rate, burst and monthly quota apply per tenant key."""
        stack_name = cdk.Stack.of(self).stack_name
        plans: dict[str, apigw.UsagePlan] = {}
        for name, tier in config.tenant_tiers.items():
            plans[name] = self.rest_api.add_usage_plan(
                f"Tier-{name}",
                name=usage_plan_name(stack_name, name),
                description=f"Tenant tier {name}: each tenant's requests, throttled and counted under its own key",
                throttle=apigw.ThrottleSettings(rate_limit=tier.rate_limit, burst_limit=tier.burst_limit),
                quota=apigw.QuotaSettings(limit=tier.monthly_requests, period=apigw.Period.MONTH)
                if tier.monthly_requests is not None
                else None,
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
            )
        # GET /usage reports what the tenant's key used under its plan. A policy of its own: the plans name the
        # stage, whose deployment needs the function, so the function must not wait for this grant.
        stack = cdk.Stack.of(self)
        iam.Policy(
            self,
            "UsagePlanReading",
            roles=[grants.role_of(self.api_function)],
            statements=[
                iam.PolicyStatement(
                    actions=["apigateway:GET"],
                    resources=[
                        f"arn:{stack.partition}:apigateway:{stack.region}::/usageplans/{plan.usage_plan_id}/usage"
                        for plan in plans.values()
                    ],
                )
            ],
        )
        return plans

    def _routes(self, config: RelayConfig) -> None:
        api = self.rest_api
        validator = api.add_request_validator("Validator", validate_request_body=True, validate_request_parameters=True)
        json_object = api.add_model(
            "JsonObject",
            content_type="application/json",
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
            description="Any JSON object; the api function validates the fields and names the ones it rejects",
        )
        app_routes = apigw.LambdaIntegration(self.api_entry, allow_test_invoke=False)
        authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=self.authorizer_entry,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=cdk.Duration.seconds(config.authorizer_cache_seconds),
        )

        def authorized(
            resource: apigw.IResource,
            method: str,
            params: dict[str, bool],
            models: dict[str, apigw.IModel] | None = None,
        ) -> None:
            resource.add_method(
                method,
                app_routes,
                authorizer=authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                # Counted and throttled by the tenant's usage plan; a tenant without a plan key gets 403.
                api_key_required=True,
                request_validator=validator,
                request_parameters={"method.request.header.Authorization": True, **params},
                request_models=models,
            )

        jobs = api.root.add_resource("jobs")
        authorized(jobs, "POST", {"method.request.header.Idempotency-Key": False}, {"application/json": json_object})
        authorized(
            jobs, "GET", {f"method.request.querystring.{q}": False for q in ("status", "provider", "limit", "cursor")}
        )
        job = jobs.add_resource("{job_id}")
        authorized(job, "GET", {"method.request.path.job_id": True})
        authorized(job.add_resource("cancel"), "POST", {"method.request.path.job_id": True})
        authorized(api.root.add_resource("usage"), "GET", {})

        # Public, read-only, and useful from a browser (docs pages, capability pickers): CORS for GET, from any
        # origin unless a console is configured (then its origin only, as for every route).
        anywhere = apigw.CorsOptions(
            allow_origins=apigw.Cors.ALL_ORIGINS, allow_methods=["GET"], max_age=cdk.Duration.hours(1)
        )
        for path in PUBLIC_GET_PATHS:
            public = api.root.add_resource(
                path, default_cors_preflight_options=None if self.console_origin else anywhere
            ).add_method("GET", app_routes)
            acknowledge(
                public,
                "AwsSolutions-APIG4",
                f"GET /{path} is public on purpose: it documents the API and the providers' capabilities, "
                "holds no tenant data, and needs no API key to read.",
            )

        # Providers cannot hold our API keys: the callback is verified in code (per-job token, provider signature).
        callback = api.root.add_resource("callbacks").add_resource("{provider}").add_resource("{job_id}")
        callback_method = callback.add_method(
            "POST",
            apigw.LambdaIntegration(self.callback_entry, allow_test_invoke=False),
            request_validator=validator,
            request_parameters={"method.request.path.provider": True, "method.request.path.job_id": True},
        )
        acknowledge(
            callback_method,
            "AwsSolutions-APIG4",
            "Providers call this route and cannot hold our API keys. The callback function verifies every "
            "request in code and fails closed: a per-job token in the URL, and the provider's signature "
            "and timestamp where the provider signs.",
        )

        if self.console_origin:
            # A route this API does not have answers the console's preflight, so the request itself gets the
            # API's 404 (`no such route`), e.g. GET /usage on a deployment without usage reporting.
            api.root.add_proxy(any_method=False)

    def _console_cors(self) -> apigw.CorsOptions | None:
        if not self.console_origin:
            return None
        return apigw.CorsOptions(
            allow_origins=[self.console_origin],
            allow_methods=["GET", "POST"],
            allow_headers=CORS_REQUEST_HEADERS,
            max_age=cdk.Duration.hours(1),
        )

    def _acknowledge(self, config: RelayConfig) -> None:
        if config.api_cloudwatch_role:
            acknowledge(
                self.rest_api,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway logs through one role per account and region, shared by every REST API there; the "
                "AWS-managed policy is the documented one for it, and scoping it to this API would break "
                "logging of the account's other APIs.",
            )
        acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "Callers are server-side apps holding tenant API keys, checked by the Lambda REQUEST authorizer; "
            "there are no end users to sign in through Cognito. The few routes without any authorizer carry "
            "their own APIG4 acknowledgment.",
        )
        if not config.waf:
            acknowledge(
                self.rest_api,
                "AwsSolutions-APIG3",
                "The operator turned the web ACL off (relay:waf=false); the API keeps the API-key authorizer, "
                "per-method throttling, request validation and per-job callback tokens.",
            )
