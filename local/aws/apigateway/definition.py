"""The REST API as the template defines it: resource tree, methods, authorizers, validators, models, responses.

Everything is read from the `AWS::ApiGateway::*` resources of one RestApi. References between those
resources are followed by logical id (they are not deployed anywhere); every other reference (function
ARNs, pseudo parameters) goes through the caller's resolver. Features the adapter does not emulate make
loading fail with the method or resource named, rather than being served differently from AWS.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from local.aws.apigateway.policy import wildcard
from local.aws.apigateway.throttling import MethodKey, Throttle
from local.aws.template import Resolver, Template, UnresolvableError, references

AWS_PROXY = "AWS_PROXY"
MOCK = "MOCK"
DEFAULT_TIMEOUT_MS = 29_000
DEFAULT_AUTHORIZER_TTL = 300  # CloudFormation's default for AuthorizerResultTtlInSeconds
INVOCATION_URI = re.compile(r":lambda:path/2015-03-31/functions/(?P<arn>.+)/invocations$")
IDENTITY_SOURCE = re.compile(
    r"^method\.request\.(?P<location>header|multivalueheader|querystring|multivaluequerystring)\.(?P<name>.+)$"
    r"|^stageVariables\.(?P<stage_variable>.+)$"
)
REQUEST_PARAMETER = re.compile(
    r"^method\.request\.(?P<location>header|multivalueheader|querystring|multivaluequerystring|path)\.(?P<name>.+)$"
)
# Models API Gateway predefines in every REST API.
BUILTIN_MODELS: dict[str, dict[str, Any]] = {
    "Empty": {"$schema": "http://json-schema.org/draft-04/schema#", "title": "Empty Schema", "type": "object"},
    "Error": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "Error Schema",
        "type": "object",
        "properties": {"message": {"type": "string"}},
    },
}


class ApiDefinitionError(Exception):
    """The template's API cannot be served as AWS would serve it; the message names the resource."""


@dataclass(frozen=True)
class IdentitySource:
    expression: str  # as written, e.g. `method.request.header.Authorization`
    location: str  # header | multivalueheader | querystring | multivaluequerystring | stageVariables
    name: str


@dataclass(frozen=True)
class Authorizer:
    logical_id: str
    id: str
    type: str  # REQUEST | TOKEN
    function_arn: str
    identity_sources: tuple[IdentitySource, ...]
    ttl_seconds: int
    validation_expression: str | None = None


@dataclass(frozen=True)
class RequestParameter:
    expression: str
    location: str  # header | multivalueheader | querystring | multivaluequerystring | path
    name: str
    required: bool


@dataclass(frozen=True)
class MockResponse:
    status: int
    selection_pattern: str | None
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Integration:
    type: str  # AWS_PROXY | MOCK
    function_arn: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    mock_status: int = 200
    responses: tuple[MockResponse, ...] = ()


@dataclass(frozen=True)
class Method:
    logical_id: str
    http_method: str
    resource_id: str
    resource_path: str
    authorizer: Authorizer | None
    parameters: tuple[RequestParameter, ...]
    validate_parameters: bool
    validate_body: bool
    models: dict[str, dict[str, Any]]  # content type -> JSON Schema (draft 4)
    integration: Integration
    api_key_required: bool = False


@dataclass
class ResourceNode:
    id: str
    path_part: str  # "" for the root
    path: str  # "/jobs/{job_id}"
    children: list[ResourceNode] = field(default_factory=list)
    methods: dict[str, Method] = field(default_factory=dict)

    @property
    def variable(self) -> str | None:
        """The path parameter name for `{name}` / `{name+}` parts."""
        if self.path_part.startswith("{") and self.path_part.endswith("}"):
            return self.path_part[1:-1].removesuffix("+")
        return None

    @property
    def greedy(self) -> bool:
        return self.path_part.endswith("+}")


@dataclass(frozen=True)
class GatewayResponse:
    type: str
    status: int | None
    templates: dict[str, str]
    parameters: dict[str, str]  # header name -> `'static'` or a method.request.* expression


@dataclass(frozen=True)
class Permission:
    """A Lambda resource policy statement that lets API Gateway invoke a function."""

    function_name: str
    source_arn: str | None


@dataclass(frozen=True)
class Quota:
    limit: int
    period: str  # DAY, WEEK or MONTH
    offset: int = 0


@dataclass(frozen=True)
class UsagePlanSpec:
    """A usage plan on this API's stage: its name, and the throttle and quota it applies to each of its keys."""

    logical_id: str
    name: str
    throttle: Throttle | None
    quota: Quota | None


@dataclass(frozen=True)
class ApiDefinition:
    logical_id: str
    api_id: str
    stage: str
    root: ResourceNode
    gateway_responses: dict[str, GatewayResponse]
    binary_media_types: tuple[str, ...]
    access_log_format: str | None
    stage_variables: dict[str, str]
    tracing: bool
    permissions: tuple[Permission, ...]
    default_throttle: Throttle | None = None  # every method's own bucket, from the stage's `/*` `*` settings
    method_throttles: dict[MethodKey, Throttle] = field(default_factory=dict)
    api_key_source: str = "HEADER"  # where a method requiring an API key finds it: x-api-key, or the authorizer
    usage_plans: tuple[UsagePlanSpec, ...] = ()

    def may_invoke(self, function_arn: str, source_arn: str) -> bool:
        """Whether a Lambda permission of the template lets API Gateway invoke the function from `source_arn`."""
        name = function_name(function_arn)
        return any(
            p.function_name == name and (p.source_arn is None or wildcard(p.source_arn, source_arn))
            for p in self.permissions
        )


def local_id(logical_id: str, length: int = 10) -> str:
    """A stable API Gateway style id (lowercase letters and digits) for a resource of the template."""
    digest = int.from_bytes(hashlib.sha256(logical_id.encode()).digest(), "big")
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    chars = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def function_name(name_or_arn: str) -> str:
    """`my-fn` from `my-fn`, `arn:aws:lambda:...:function:my-fn` or `...:function:my-fn:alias`."""
    return name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiDefinitionError(f"expected a boolean, got {value!r}")


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def _root_of(value: Any) -> str | None:
    """The RestApi logical id of a `Fn::GetAtt [<RestApi>, RootResourceId]`."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else str(target).split(".", 1)
        if attribute == "RootResourceId":
            return str(name)
    return None


class _Loader:
    def __init__(
        self,
        template: Template,
        resolve: Callable[[Any], Any],
        api_logical_id: str,
        stage: str | None,
        aliases: Mapping[str, str],
    ):
        self.template = template
        self.outer = resolve
        self.aliases = aliases
        self.api = api_logical_id
        self.api_id = local_id(api_logical_id)
        self.root_id = local_id(f"{api_logical_id}/root")
        self.own = {
            name: resource
            for name, resource in template.resources.items()
            if resource["Type"].startswith("AWS::ApiGateway::")
            and _ref(resource.get("Properties", {}).get("RestApiId")) == api_logical_id
        }
        self.stage_name, self.stage = self._stage(stage)
        self.resolver = Resolver(self._local_ref, self._local_att, template.parameter_defaults())
        self.authorizers: dict[str, Authorizer] = {}

    # -- references --------------------------------------------------------------------------------

    def _local_ref(self, name: str) -> Any:
        if name == self.api:
            return self.api_id
        if name in self.own:
            resource = self.own[name]
            kind = resource["Type"]
            if kind == "AWS::ApiGateway::Stage":
                return resource["Properties"]["StageName"]
            if kind == "AWS::ApiGateway::Model":
                return resource["Properties"].get("Name", name)
            return local_id(name, 6 if kind == "AWS::ApiGateway::Authorizer" else 10)
        return self.outer({"Ref": name})

    def _local_att(self, name: str, attribute: str) -> Any:
        if name == self.api and attribute == "RootResourceId":
            return self.root_id
        return self.outer({"Fn::GetAtt": [name, attribute]})

    def resolve(self, value: Any, what: str) -> Any:
        try:
            return self.resolver(value)
        except (UnresolvableError, LookupError) as exc:
            raise ApiDefinitionError(f"{what}: cannot resolve {json.dumps(value)}: {exc}") from exc

    def header_source(self, value: Any, what: str) -> str:
        """A response header's source as deployed (intrinsics resolved), with `aliases` swapped in: local mode
        serves the console at another origin than the template's distribution."""
        text = str(self.resolve(value, what))
        for deployed, local in self.aliases.items():
            text = text.replace(deployed, local)
        return text

    def function_arn(self, uri: Any, what: str) -> str:
        resolved = str(self.resolve(uri, what))
        match = INVOCATION_URI.search(resolved)
        if match is None:
            raise ApiDefinitionError(f"{what}: {resolved!r} is not a Lambda invocation URI")
        return match.group("arn")

    def resource_of(self, value: Any, what: str) -> str:
        """The logical id of the Resource (or the RestApi, for its root) a ParentId/ResourceId names."""
        root = _root_of(value)
        if root is not None:
            if root != self.api:
                raise ApiDefinitionError(f"{what}: {json.dumps(value)} is the root of another API")
            return self.api
        name = _ref(value)
        if name is None or name not in self.own or self.own[name]["Type"] != "AWS::ApiGateway::Resource":
            raise ApiDefinitionError(f"{what}: {json.dumps(value)} names no resource of {self.api}")
        return name

    # -- parts -------------------------------------------------------------------------------------

    def _stage(self, wanted: str | None) -> tuple[str, dict[str, Any]]:
        stages = [r["Properties"] for r in self.own.values() if r["Type"] == "AWS::ApiGateway::Stage"]
        stages += [
            {"StageName": r["Properties"]["StageName"], **r["Properties"].get("StageDescription", {})}
            for r in self.own.values()
            if r["Type"] == "AWS::ApiGateway::Deployment" and r["Properties"].get("StageName")
        ]
        names = [str(s["StageName"]) for s in stages]
        if wanted is not None:
            if wanted not in names:
                raise ApiDefinitionError(f"{self.api} has no stage {wanted!r} (stages: {names})")
            return wanted, stages[names.index(wanted)]
        if len(stages) != 1:
            raise ApiDefinitionError(f"{self.api} has {len(stages)} stages {names}; name the one to serve")
        return names[0], stages[0]

    def tree(self) -> ResourceNode:
        root = ResourceNode(self.root_id, "", "/")
        nodes = {self.api: root}
        pending = {n: r["Properties"] for n, r in self.own.items() if r["Type"] == "AWS::ApiGateway::Resource"}
        while pending:
            ready = {
                name: props
                for name, props in pending.items()
                if self.resource_of(props["ParentId"], f"resource {name}") in nodes
            }
            if not ready:
                raise ApiDefinitionError(f"resources with no reachable parent: {sorted(pending)}")
            for name, props in ready.items():
                parent = nodes[self.resource_of(props["ParentId"], f"resource {name}")]
                part = str(props["PathPart"])
                if any(child.path_part == part for child in parent.children):
                    raise ApiDefinitionError(f"resource {name}: {parent.path} already has a child {part!r}")
                path = f"{parent.path.rstrip('/')}/{part}"
                node = ResourceNode(local_id(name), part, path)
                parent.children.append(node)
                nodes[name] = node
                del pending[name]
        for name, resource in self.own.items():
            if resource["Type"] == "AWS::ApiGateway::Method":
                props = resource["Properties"]
                node = nodes[self.resource_of(props["ResourceId"], f"method {name}")]
                method = self.method(name, props, node)
                if method.http_method in node.methods:
                    raise ApiDefinitionError(f"method {name}: {method.http_method} {node.path} is defined twice")
                node.methods[method.http_method] = method
        return root

    def method(self, name: str, props: dict[str, Any], node: ResourceNode) -> Method:
        what = f"method {name} ({props.get('HttpMethod')} {node.path})"
        authorization = str(props.get("AuthorizationType", "NONE"))
        authorizer = None
        if authorization == "CUSTOM":
            authorizer_name = _ref(props.get("AuthorizerId"))
            if authorizer_name is None or authorizer_name not in self.own:
                raise ApiDefinitionError(f"{what}: CUSTOM authorization without an authorizer of {self.api}")
            authorizer = self.authorizer(authorizer_name)
        elif authorization != "NONE":
            raise ApiDefinitionError(f"{what}: AuthorizationType {authorization} is not emulated")
        validator = _ref(props.get("RequestValidatorId"))
        validator_props: dict[str, Any] = {}
        if validator is not None:
            if validator not in self.own:
                raise ApiDefinitionError(f"{what}: RequestValidatorId names no validator of {self.api}")
            validator_props = self.own[validator]["Properties"]
        parameters = []
        for expression, required in (props.get("RequestParameters") or {}).items():
            match = REQUEST_PARAMETER.match(expression)
            if match is None:
                raise ApiDefinitionError(f"{what}: request parameter {expression!r} is not understood")
            parameters.append(RequestParameter(expression, match["location"], match["name"], as_bool(required)))
        return Method(
            logical_id=name,
            http_method=str(props["HttpMethod"]).upper(),
            resource_id=node.id,
            resource_path=node.path,
            authorizer=authorizer,
            parameters=tuple(parameters),
            validate_parameters=as_bool(validator_props.get("ValidateRequestParameters", False)),
            validate_body=as_bool(validator_props.get("ValidateRequestBody", False)),
            models={
                str(content_type).lower(): self.model(model, what)
                for content_type, model in (props.get("RequestModels") or {}).items()
            },
            integration=self.integration(props.get("Integration"), what),
            api_key_required=as_bool(props.get("ApiKeyRequired", False)),
        )

    def model(self, value: Any, what: str) -> dict[str, Any]:
        name = _ref(value)
        if name is None:
            if isinstance(value, str) and value in BUILTIN_MODELS:
                return BUILTIN_MODELS[value]
            by_name = [
                n
                for n, r in self.own.items()
                if r["Type"] == "AWS::ApiGateway::Model" and r["Properties"].get("Name") == value
            ]
            if len(by_name) != 1:
                raise ApiDefinitionError(f"{what}: request model {value!r} is not defined")
            name = by_name[0]
        if name not in self.own or self.own[name]["Type"] != "AWS::ApiGateway::Model":
            raise ApiDefinitionError(f"{what}: request model {name} is not a model of {self.api}")
        schema = self.own[name]["Properties"].get("Schema", {})
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict):
            raise ApiDefinitionError(f"model {name}: the schema is not a JSON object")
        if _external_refs(schema):
            raise ApiDefinitionError(f"model {name}: references to other models are not emulated")
        try:
            Draft4Validator.check_schema(schema)
        except SchemaError as exc:
            raise ApiDefinitionError(f"model {name}: not a draft 4 JSON Schema: {exc.message}") from exc
        return schema

    def integration(self, props: Any, what: str) -> Integration:
        if not isinstance(props, dict):
            raise ApiDefinitionError(f"{what}: no Integration")
        kind = str(props.get("Type"))
        if kind == AWS_PROXY:
            timeout = int(props.get("TimeoutInMillis", DEFAULT_TIMEOUT_MS))
            return Integration(AWS_PROXY, self.function_arn(props.get("Uri"), what), timeout_ms=timeout)
        if kind == MOCK:
            request_template = (props.get("RequestTemplates") or {}).get("application/json", "")
            status = re.search(r"statusCode\s*:\s*(\d{3})", str(request_template))
            responses = tuple(self.mock_response(item, what) for item in props.get("IntegrationResponses") or [])
            return Integration(MOCK, mock_status=int(status.group(1)) if status else 200, responses=responses)
        raise ApiDefinitionError(f"{what}: integration type {kind} is not emulated")

    def mock_response(self, props: dict[str, Any], what: str) -> MockResponse:
        headers = {}
        for target, source in (props.get("ResponseParameters") or {}).items():
            prefix = "method.response.header."
            if not target.startswith(prefix):
                raise ApiDefinitionError(f"{what}: response parameter {target!r} is not emulated")
            headers[target[len(prefix) :]] = _static(self.header_source(source, what), what)
        templates = props.get("ResponseTemplates") or {}
        body = str(templates.get("application/json", next(iter(templates.values()), "")))
        if "$" in body or "#" in body:
            raise ApiDefinitionError(f"{what}: mapping templates (VTL) in integration responses are not emulated")
        pattern = props.get("SelectionPattern")
        if pattern:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ApiDefinitionError(f"{what}: SelectionPattern {pattern!r} is not a regular expression") from exc
        return MockResponse(int(props["StatusCode"]), str(pattern) if pattern else None, headers, body)

    def authorizer(self, name: str) -> Authorizer:
        if name in self.authorizers:
            return self.authorizers[name]
        props = self.own[name]["Properties"]
        what = f"authorizer {name}"
        kind = str(props.get("Type"))
        if kind not in ("REQUEST", "TOKEN"):
            raise ApiDefinitionError(f"{what}: type {kind} is not emulated")
        sources = []
        for expression in (part.strip() for part in str(props.get("IdentitySource") or "").split(",")):
            if not expression:
                continue
            match = IDENTITY_SOURCE.match(expression)
            if match is None:
                raise ApiDefinitionError(f"{what}: identity source {expression!r} is not emulated")
            if match["stage_variable"]:
                sources.append(IdentitySource(expression, "stageVariables", match["stage_variable"]))
            else:
                sources.append(IdentitySource(expression, match["location"], match["name"]))
        if kind == "TOKEN" and (len(sources) != 1 or sources[0].location != "header"):
            raise ApiDefinitionError(f"{what}: a TOKEN authorizer takes exactly one header")
        ttl = int(props.get("AuthorizerResultTtlInSeconds", DEFAULT_AUTHORIZER_TTL))
        if ttl > 0 and not sources:
            raise ApiDefinitionError(f"{what}: caching needs at least one identity source")
        found = Authorizer(
            logical_id=name,
            id=local_id(name, 6),
            type=kind,
            function_arn=self.function_arn(props.get("AuthorizerUri"), what),
            identity_sources=tuple(sources),
            ttl_seconds=ttl,
            validation_expression=props.get("IdentityValidationExpression") if kind == "TOKEN" else None,
        )
        self.authorizers[name] = found
        return found

    def gateway_responses(self) -> dict[str, GatewayResponse]:
        found = {}
        for name, resource in self.own.items():
            if resource["Type"] != "AWS::ApiGateway::GatewayResponse":
                continue
            props = resource["Properties"]
            parameters = {}
            for target, raw in (props.get("ResponseParameters") or {}).items():
                prefix = "gatewayresponse.header."
                if not target.startswith(prefix):
                    raise ApiDefinitionError(f"gateway response {name}: parameter {target!r} is not emulated")
                source = self.header_source(raw, f"gateway response {name}")
                if not (source.startswith("'") or REQUEST_PARAMETER.match(source)):
                    raise ApiDefinitionError(f"gateway response {name}: source {source!r} is not emulated")
                parameters[target[len(prefix) :]] = source
            status = props.get("StatusCode")
            found[str(props["ResponseType"])] = GatewayResponse(
                type=str(props["ResponseType"]),
                status=int(status) if status is not None else None,
                templates={str(k): str(v) for k, v in (props.get("ResponseTemplates") or {}).items()},
                parameters=parameters,
            )
        return found

    def permissions(self) -> tuple[Permission, ...]:
        found = []
        for name, resource in self.template.of_type("AWS::Lambda::Permission").items():
            props = resource["Properties"]
            if props.get("Principal") != "apigateway.amazonaws.com":
                continue
            if props.get("Action") not in ("lambda:InvokeFunction", "lambda:*"):
                continue
            source = props.get("SourceArn")
            if source is not None and self.api not in references(source):
                continue  # another API's grant: it lets nothing through here
            resolved_source = str(self.resolve(source, f"permission {name}")) if source is not None else None
            target = str(self.resolve(props["FunctionName"], f"permission {name}"))
            found.append(Permission(function_name(target), resolved_source))
        return tuple(found)

    def throttles(self) -> tuple[Throttle | None, dict[MethodKey, Throttle]]:
        """The stage's default method throttle and each method's own, from its MethodSettings (and, for a stage
        given as a Deployment's StageDescription, its top-level ThrottlingRateLimit/BurstLimit)."""
        what = f"stage {self.stage_name}"
        default = _throttle(self.stage, None, what)
        per_method: dict[MethodKey, Throttle] = {}
        for setting in self.stage.get("MethodSettings") or []:
            http_method = str(setting.get("HttpMethod", "*")).upper()
            # `/` then the resource path with `/` written `~1` (and `~` as `~0`): `/~1callbacks~1{id}`, or `/*`.
            encoded = str(setting.get("ResourcePath", "/*"))
            if encoded == "/*":
                if http_method != "*":
                    raise ApiDefinitionError(f"{what}: method settings for {http_method} /* are not emulated")
                default = _throttle(setting, default, what)
                continue
            path = encoded.removeprefix("/").replace("~1", "/").replace("~0", "~")
            if "*" in path or not path.startswith("/"):
                raise ApiDefinitionError(f"{what}: method settings for resource path {path!r} are not emulated")
            found = _throttle(setting, None, what)
            if found is not None:
                per_method[(http_method, path)] = found
        filled: dict[MethodKey, Throttle] = {}
        for key, value in per_method.items():  # a method's own settings leave out what it takes from the stage
            if default is None and (value.rate < 0 or value.burst < 0):
                raise ApiDefinitionError(f"{what}: {key[0]} {key[1]} sets only half a throttle and the stage none")
            filled[key] = Throttle(
                rate=value.rate if value.rate >= 0 else default.rate if default else value.rate,
                burst=value.burst if value.burst >= 0 else default.burst if default else value.burst,
            )
        return default, filled

    def usage_plans(self) -> tuple[UsagePlanSpec, ...]:
        """The template's usage plans naming this API's stage (plans are not `RestApiId` resources)."""
        found = []
        for name, resource in self.template.of_type("AWS::ApiGateway::UsagePlan").items():
            props = resource.get("Properties", {})
            stages = [
                stage
                for stage in props.get("ApiStages") or []
                if _ref(stage.get("ApiId")) == self.api
                and self.resolve(stage.get("Stage"), f"usage plan {name}") == self.stage_name
            ]
            if not stages:
                continue
            if any(stage.get("Throttle") for stage in stages):
                raise ApiDefinitionError(f"usage plan {name}: per-method throttles are not emulated")
            throttle = props.get("Throttle")
            quota = props.get("Quota")
            found.append(
                UsagePlanSpec(
                    logical_id=name,
                    name=str(self.resolve(props.get("UsagePlanName", name), f"usage plan {name}")),
                    throttle=Throttle(rate=float(throttle["RateLimit"]), burst=int(throttle["BurstLimit"]))
                    if throttle
                    else None,
                    quota=Quota(int(quota["Limit"]), str(quota.get("Period", "MONTH")), int(quota.get("Offset", 0)))
                    if quota
                    else None,
                )
            )
        return tuple(found)

    def load(self) -> ApiDefinition:
        api_props = self.template.resources[self.api].get("Properties", {})
        access_log = self.stage.get("AccessLogSetting") or {}
        default_throttle, method_throttles = self.throttles()
        return ApiDefinition(
            logical_id=self.api,
            api_id=self.api_id,
            stage=self.stage_name,
            root=self.tree(),
            gateway_responses=self.gateway_responses(),
            binary_media_types=tuple(str(t).replace("~1", "/") for t in api_props.get("BinaryMediaTypes") or []),
            access_log_format=access_log.get("Format"),
            stage_variables={str(k): str(v) for k, v in (self.stage.get("Variables") or {}).items()},
            tracing=as_bool(self.stage.get("TracingEnabled", False)),
            permissions=self.permissions(),
            default_throttle=default_throttle,
            method_throttles=method_throttles,
            api_key_source=str(api_props.get("ApiKeySourceType", "HEADER")),
            usage_plans=self.usage_plans(),
        )


def _throttle(settings: dict[str, Any], inherited: Throttle | None, what: str) -> Throttle | None:
    """ThrottlingRateLimit/BurstLimit of one settings object; a missing one is taken from `inherited` (-1 when
    there is nothing to inherit yet: filled in from the stage's default once that is known)."""
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return inherited
    try:
        parsed_rate = float(rate) if rate is not None else (inherited.rate if inherited else -1.0)
        parsed_burst = int(burst) if burst is not None else (inherited.burst if inherited else -1)
    except (TypeError, ValueError) as exc:
        raise ApiDefinitionError(f"{what}: throttling {rate!r}/{burst!r} is not a number") from exc
    return Throttle(rate=parsed_rate, burst=parsed_burst)


def _static(source: Any, what: str) -> str:
    text = str(source)
    if len(text) < 2 or not (text.startswith("'") and text.endswith("'")):
        raise ApiDefinitionError(f"{what}: only quoted static values are emulated in responses, got {text!r}")
    return text[1:-1]


def _external_refs(schema: Any) -> bool:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_external_refs(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_external_refs(value) for value in schema)
    return False


def load_api(
    template: Template,
    resolve: Callable[[Any], Any],
    *,
    rest_api: str | None = None,
    stage: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> ApiDefinition:
    """The API of `rest_api` (a RestApi logical id; optional when the template has one) at `stage`.

    `aliases` replaces text in resolved response header values (a deployed origin by its local one)."""
    apis = list(template.of_type("AWS::ApiGateway::RestApi"))
    if rest_api is None:
        if len(apis) != 1:
            raise ApiDefinitionError(f"the template has {len(apis)} REST APIs {apis}; name the one to serve")
        rest_api = apis[0]
    elif rest_api not in apis:
        raise ApiDefinitionError(f"{rest_api} is not a REST API of the template (REST APIs: {apis})")
    if template.resources[rest_api].get("Properties", {}).get("Body") is not None:
        raise ApiDefinitionError(f"{rest_api}: APIs defined by an OpenAPI Body are not emulated")
    return _Loader(template, resolve, rest_api, stage, aliases or {}).load()
