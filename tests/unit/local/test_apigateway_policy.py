"""IAM policy evaluation, resource matching and `$context` substitution of the local API Gateway."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pydantic import ValidationError

from local.aws.apigateway.definition import ResourceNode
from local.aws.apigateway.policy import Decision, PolicyDocument, evaluate, wildcard
from local.aws.apigateway.responses import substitute
from local.aws.apigateway.routing import match, split_path

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/jobs/job_1"


def policy(*statements: Mapping[str, object]) -> PolicyDocument:
    return PolicyDocument.model_validate({"Version": "2012-10-17", "Statement": list(statements)})


def statement(
    effect: str = "Allow", resource: object = "*", action: object = "execute-api:Invoke"
) -> dict[str, object]:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "anything/at/all", True),
        ("arn:*/v1/GET/*", ARN, True),
        ("arn:*/v1/POST/*", ARN, False),
        ("arn:*/jobs/job_?", ARN, True),
        ("arn:*/jobs/job_??", ARN, False),
        ("arn:*/JOBS/*", ARN, False),
        ("arn:*/jobs/job_1.", ARN, False),
        ("a.c", "abc", False),
    ],
)
def test_resources_match_iam_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert wildcard(pattern, value) is expected


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert evaluate(policy(statement(action="execute-api:*")), ARN) is Decision.ALLOW
    assert evaluate(policy(statement(action="Execute-API:invoke")), ARN) is Decision.ALLOW
    assert evaluate(policy(statement(action=["s3:GetObject"])), ARN) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    document = policy(statement(resource="*"), statement("Deny", "arn:*/v1/GET/jobs/*"))

    assert evaluate(document, ARN) is Decision.EXPLICIT_DENY
    assert evaluate(document, ARN.replace("GET", "POST")) is Decision.ALLOW


def test_no_matching_allow_is_an_implicit_deny() -> None:
    assert evaluate(policy(statement(resource=["arn:*/v1/POST/*", "arn:*/v2/*"])), ARN) is Decision.IMPLICIT_DENY
    assert evaluate(policy(), ARN) is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource_invert_the_match() -> None:
    allow_other = {"Effect": "Allow", "NotAction": "s3:*", "NotResource": "arn:*/v1/POST/*"}
    assert evaluate(policy(allow_other), ARN) is Decision.ALLOW
    deny_except = {"Effect": "Deny", "Action": "*", "NotResource": ARN}
    assert evaluate(policy(statement(), deny_except), ARN) is Decision.ALLOW
    assert evaluate(policy(statement(), deny_except), ARN + "x") is Decision.EXPLICIT_DENY


def test_conditions_fail_closed() -> None:
    conditional_allow = {**statement(), "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    assert evaluate(policy(conditional_allow), ARN) is Decision.IMPLICIT_DENY
    conditional_deny = {**statement("Deny"), "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert evaluate(policy(statement(), conditional_deny), ARN) is Decision.EXPLICIT_DENY


def test_a_single_statement_object_is_accepted() -> None:
    document = PolicyDocument.model_validate({"Statement": statement()})
    assert evaluate(document, ARN) is Decision.ALLOW


@pytest.mark.parametrize(
    "bad",
    [
        {"Effect": "allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*"},
    ],
)
def test_malformed_statements_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        policy(bad)


def _tree() -> ResourceNode:
    root = ResourceNode("r", "", "/")
    jobs = ResourceNode("j", "jobs", "/jobs")
    job = ResourceNode("ji", "{job_id}", "/jobs/{job_id}")
    latest = ResourceNode("jl", "latest", "/jobs/latest")
    cancel = ResourceNode("jc", "cancel", "/jobs/{job_id}/cancel")
    proxy = ResourceNode("p", "{proxy+}", "/{proxy+}")
    job.children.append(cancel)
    jobs.children += [job, latest]
    root.children += [proxy, jobs]
    return root


@pytest.mark.parametrize(
    ("path", "resource", "parameters"),
    [
        ("/", "/", {}),
        ("/jobs", "/jobs", {}),
        ("/jobs/latest", "/jobs/latest", {}),
        ("/jobs/job%201", "/jobs/{job_id}", {"job_id": "job 1"}),
        ("/jobs/latest/cancel", "/jobs/{job_id}/cancel", {"job_id": "latest"}),
        ("/other/deep/path", "/{proxy+}", {"proxy": "other/deep/path"}),
        ("/jobs/a/b/c", "/{proxy+}", {"proxy": "jobs/a/b/c"}),
    ],
)
def test_literals_win_over_parameters_which_win_over_greedy_parts(
    path: str, resource: str, parameters: dict[str, str]
) -> None:
    segments = split_path(path)
    assert segments is not None
    route = match(_tree(), segments)

    assert route is not None
    assert route.node.path == resource
    assert route.path_parameters == parameters


def test_an_empty_segment_matches_nothing() -> None:
    assert split_path("/jobs//cancel") is None


def test_substitution_fills_context_variables_longest_name_first() -> None:
    variables = {"error.message": "m", "error.messageString": '"m"', "requestId": "r1", "authorizer.tenant_id": "t"}
    text = "$context.error.messageString|$context.error.message|$context.requestId.|$context.authorizer.tenant_id"

    assert substitute(text, variables) == '"m"|m|r1.|t'
    assert substitute("$context.nothing.here", variables, missing="-") == "-"
