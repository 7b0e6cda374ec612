"""Deploying the synthesized template into the in-process AWS emulator.

moto's CloudFormation creates most resource types. The rest (secrets, SNS subscriptions, resource
policies, alarms, some API Gateway parts) are created here from the same template definitions:
those that only other resources point at first, with their references replaced by the values
they got; those that point at stack resources after the stack exists.

The console's CloudFront distribution and the deployment of its files are served by the local console
server instead (local/aws/cloudfront.py); the distribution gets a stand-in id and domain name first,
because the stack's resources name it (the API's CORS origin, the console bucket's policy).
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.names import STACK_NAME
from local.aws.buckets import UnsupportedBucketProperty, apply_skipped_properties
from local.aws.moto_patches import cloudformation_supported_types
from local.aws.template import ACCOUNT_ID, REGION, Resolver, Template, UnresolvableError, references

Clients = Callable[[str], Any]
Creator = Callable[["StackDeployer", str, dict[str, Any]], "Created"]

BOOTSTRAP_QUALIFIER = "hnb659fds"
ASSET_BUCKET = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{ACCOUNT_ID}-{REGION}"


@dataclass
class Created:
    physical_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


class DeployError(Exception):
    pass


class StackDeployer:
    def __init__(self, template: Template, clients: Clients, stack_name: str = STACK_NAME) -> None:
        self.template = template
        self.clients = clients
        self.stack_name = stack_name
        self.created: dict[str, Created] = {}
        self.physical: dict[str, str] = {}
        self.notes: list[str] = []

    # -- resolution ------------------------------------------------------------------------------

    def ref(self, name: str) -> Any:
        if name in self.created and self.created[name].physical_id is not None:
            return self.created[name].physical_id
        if name in self.physical:
            return self.physical[name]
        raise UnresolvableError(f"no value yet for {name}")

    def att(self, name: str, attribute: str) -> Any:
        if name in self.created:
            if attribute in self.created[name].attributes:
                return self.created[name].attributes[attribute]
            raise UnresolvableError(f"{name} has no attribute {attribute}")
        if name not in self.physical:
            raise UnresolvableError(f"no value yet for {name}")
        return stack_attribute(self.clients, self.template.resources[name]["Type"], self.physical[name], attribute)

    @property
    def resolve(self) -> Resolver:
        return Resolver(self.ref, self.att, self.template.parameter_defaults())

    # -- deploy ----------------------------------------------------------------------------------

    def served_locally(self) -> dict[str, str]:
        """Resources this process runs itself instead of moto, and what runs them.

        API Gateway (and permissions naming the API) is served by the local HTTP adapter. Event-source
        mappings are driven by the local event-source drivers: moto's own copies would push records to
        functions through Docker and empty the table's stream as they went. The WAF web ACL is not
        emulated: local requests come from loopback, where per-IP limits and managed rules say nothing.
        """
        resources = self.template.resources
        waf = {name for name, r in resources.items() if r["Type"].startswith("AWS::WAFv2::")}
        api = {name for name, r in resources.items() if r["Type"].startswith("AWS::ApiGateway::")}
        api |= {name for name, r in resources.items() if references(r.get("Properties", {})) & api} - waf
        served = dict.fromkeys(api, "served by the local HTTP adapter")
        served.update(dict.fromkeys(waf, "not emulated (WAF)"))
        for name, resource in resources.items():
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                served[name] = "driven by the local event-source drivers"
            if resource["Type"].startswith("AWS::CloudFront::") or resource["Type"] in CONSOLE_FILES_TYPES:
                served[name] = "served by the local console server"
        return served

    def deploy(self, assets: dict[str, bytes]) -> None:
        self._bootstrap(assets)
        resources = self.template.resources
        served = self.served_locally()
        self.notes.extend(f"{name} ({resources[name]['Type']}): {how}" for name, how in sorted(served.items()))
        rest = {name: r for name, r in resources.items() if name not in served}
        supported = cloudformation_supported_types({r["Type"] for r in rest.values()})
        ours = {name for name, r in rest.items() if r["Type"] not in supported}
        for name in ours:
            if resources[name]["Type"] not in CREATORS:
                raise DeployError(f"no local creator for {resources[name]['Type']} ({name})")
        for name in sorted(served):
            if resources[name]["Type"] in STAND_INS:
                self.created[name] = STAND_INS[resources[name]["Type"]](self, name)
        early = {name for name in ours if not (references(resources[name].get("Properties", {})) - ours)}
        for name in sorted(early):
            self._create(name)
        self._create_stack(ours | set(served))
        for name in sorted(ours - early):
            self._create(name)
        self._configure_buckets(ours | set(served))  # after the bucket policies: logging needs the log bucket's

    def _bootstrap(self, assets: dict[str, bytes]) -> None:
        ssm = self.clients("ssm")
        version = (
            self.template.parameter_defaults().get("BootstrapVersion")
            or f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
        )
        ssm.put_parameter(Name=version, Value="30", Type="String", Overwrite=True)
        s3 = self.clients("s3")
        s3.create_bucket(Bucket=ASSET_BUCKET)
        for key, body in assets.items():
            s3.put_object(Bucket=ASSET_BUCKET, Key=key, Body=body)

    def _create(self, name: str) -> None:
        resource = self.template.resources[name]
        properties = self.resolve(resource.get("Properties", {}))
        created = CREATORS[resource["Type"]](self, name, properties)
        self.created[name] = created
        if created.note:
            self.notes.append(f"{name} ({resource['Type']}): {created.note}")

    def _create_stack(self, excluded: set[str]) -> None:
        body = copy.deepcopy(self.template.body)
        body["Resources"] = {
            name: _without_dependencies(_substitute(resource, self.created), excluded)
            for name, resource in body["Resources"].items()
            if name not in excluded
        }
        dangling = references(body["Resources"]) & excluded
        if dangling:
            raise DeployError(f"stack resources refer to resources created after the stack: {sorted(dangling)}")
        body["Outputs"] = {
            key: _substitute(output, self.created)
            for key, output in body.get("Outputs", {}).items()
            if not (references(output) & (excluded - set(self.created)))
        }
        cfn = self.clients("cloudformation")
        cfn.create_stack(StackName=self.stack_name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_IAM"])
        deadline = time.monotonic() + 120
        while True:
            stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
            if not stack["StackStatus"].endswith("IN_PROGRESS"):
                break
            if time.monotonic() > deadline:
                raise DeployError("stack creation did not finish in 120 s")
            time.sleep(0.1)
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise DeployError(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
        for item in cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]:
            if item.get("PhysicalResourceId"):
                self.physical[item["LogicalResourceId"]] = item["PhysicalResourceId"]

    def _configure_buckets(self, excluded: set[str]) -> None:
        s3 = self.clients("s3")
        for name, resource in self.template.of_type("AWS::S3::Bucket").items():
            if name in excluded:
                continue
            properties = self.resolve(resource.get("Properties", {}))
            try:
                applied = apply_skipped_properties(s3, self.physical[name], properties)
            except UnsupportedBucketProperty as exc:
                raise DeployError(f"{name}: {exc}") from exc
            if applied:
                self.notes.append(f"{name} (AWS::S3::Bucket): {', '.join(applied)} put through the S3 API")

    def outputs(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        found = dict(overrides or {})
        stack = self.clients("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"][0]
        for output in stack.get("Outputs", []):
            found.setdefault(output["OutputKey"], output["OutputValue"])
        for key, output in self.template.body.get("Outputs", {}).items():
            if key not in found:
                try:
                    found[key] = str(self.resolve(output["Value"]))
                except UnresolvableError:
                    continue  # served locally (the API URL): the caller passes it in `overrides`
        return found


def _substitute(value: Any, created: dict[str, Created]) -> Any:
    """Replace references to resources created outside the stack with the values they got."""
    if isinstance(value, list):
        return [_substitute(item, created) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in created:
        return created[value["Ref"]].physical_id
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else str(target).split(".", 1)
        if name in created:
            return created[name].attributes[attribute]
    return {key: _substitute(item, created) for key, item in value.items()}


def _without_dependencies(resource: dict[str, Any], removed: set[str]) -> dict[str, Any]:
    depends = resource.get("DependsOn")
    if depends is None:
        return resource
    kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed]
    resource = dict(resource)
    if kept:
        resource["DependsOn"] = kept
    else:
        resource.pop("DependsOn")
    return resource


# -- attributes of resources moto created ----------------------------------------------------------


def stack_attribute(clients: Clients, resource_type: str, physical: str, attribute: str) -> Any:
    arn_prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT_ID}"
    if resource_type == "AWS::SQS::Queue":
        name = physical.rstrip("/").rsplit("/", 1)[-1]
        return {"Arn": f"{arn_prefix.format('sqs')}:{name}", "QueueName": name, "QueueUrl": physical}[attribute]
    if resource_type == "AWS::Lambda::Function" and attribute == "Arn":
        return f"{arn_prefix.format('lambda')}:function:{physical}"
    if resource_type == "AWS::IAM::Role" and attribute == "Arn":
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{physical}"
    if resource_type == "AWS::DynamoDB::Table":
        table = clients("dynamodb").describe_table(TableName=physical)["Table"]
        return {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")}[attribute]
    if resource_type == "AWS::S3::Bucket":
        return {
            "Arn": f"arn:aws:s3:::{physical}",
            "DomainName": f"{physical}.s3.amazonaws.com",
            "RegionalDomainName": f"{physical}.s3.{REGION}.amazonaws.com",
        }[attribute]
    if resource_type == "AWS::Logs::LogGroup" and attribute == "Arn":
        return f"{arn_prefix.format('logs')}:log-group:{physical}:*"
    if resource_type == "AWS::SNS::Topic" and attribute == "TopicName":
        return physical.rsplit(":", 1)[-1]
    if resource_type == "AWS::StepFunctions::StateMachine" and attribute == "Name":
        return physical.rsplit(":", 1)[-1]
    if resource_type == "AWS::ApiGateway::RestApi" and attribute == "RootResourceId":
        items = clients("apigateway").get_resources(restApiId=physical)["items"]
        return next(item["id"] for item in items if item["path"] == "/")
    raise UnresolvableError(f"attribute {attribute} of {resource_type} is not known locally")


# -- creators for what moto's CloudFormation skips --------------------------------------------------


def _secret(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    # CloudFormation names a secret `<logical id>-<random>`; functions derive the name from the ARN that way.
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    value = props.get("SecretString")
    if value is None:
        spec = props.get("GenerateSecretString", {})
        alphabet = string.ascii_letters + string.digits
        if not spec.get("ExcludePunctuation"):
            alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
        value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    made = deployer.clients("secretsmanager").create_secret(
        Name=f"{name}-{suffix}", SecretString=value, Description=props.get("Description", "")
    )
    return Created(made["ARN"], {"Id": made["ARN"]})


def _subscription(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    attributes = {}
    for key in ("RawMessageDelivery", "FilterPolicy", "RedrivePolicy", "FilterPolicyScope"):
        if key in props:
            value = props[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value).lower()
    made = deployer.clients("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], Attributes=attributes
    )
    return Created(made["SubscriptionArn"])


def _topic_policy(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    for topic in props["Topics"]:
        deployer.clients("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return Created(name)


def _queue_policy(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    for queue_url in props["Queues"]:
        deployer.clients("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return Created(name)


def _without_tls_only(policy: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The policy minus statements that deny requests without TLS: the local endpoint is plain http."""
    tls_keys = ("aws:SecureTransport", "s3:TlsVersion")
    kept = [
        statement
        for statement in policy.get("Statement", [])
        if not any(key in json.dumps(statement.get("Condition", {})) for key in tls_keys)
    ]
    return {**policy, "Statement": kept}, len(policy.get("Statement", [])) - len(kept)


def _bucket_policy(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    policy, dropped = _without_tls_only(props["PolicyDocument"])
    note = f"{dropped} TLS-only statement(s) left out: the local endpoint is plain http" if dropped else None
    if policy["Statement"]:
        deployer.clients("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(policy))
    return Created(name, note=note)


def _alarm(deployer: StackDeployer, name: str, props: dict[str, Any]) -> Created:
    props = {key: value for key, value in props.items() if value is not None}
    props.setdefault("AlarmName", f"{deployer.stack_name}-{name}")
    deployer.clients("cloudwatch").put_metric_alarm(**props)
    return Created(props["AlarmName"])


# -- stand-ins for what the local console server serves ----------------------------------------------

# The custom resource that copies the console's files into its bucket (the CDK's BucketDeployment).
CONSOLE_FILES_TYPES = ("Custom::CDKBucketDeployment",)


def _distribution(deployer: StackDeployer, name: str) -> Created:
    """An id and domain name shaped like CloudFront's; the local console server serves what it would."""
    distribution_id = "E" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))
    domain = f"d{secrets.token_hex(7)}.cloudfront.net"
    return Created(distribution_id, {"Id": distribution_id, "DomainName": domain})


STAND_INS: dict[str, Callable[[StackDeployer, str], Created]] = {"AWS::CloudFront::Distribution": _distribution}


CREATORS: dict[str, Creator] = {
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::CloudWatch::Alarm": _alarm,
}
