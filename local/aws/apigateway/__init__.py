"""The deployed REST API, served locally from the synthesized template.

moto does not serve API Gateway with Lambda proxy integrations, so this adapter reads the template's
`AWS::ApiGateway::*` resources and answers as the deployed API would: the resource tree and methods
(including `{param}` and greedy `{param+}` parts), the stage prefix, Lambda REQUEST/TOKEN authorizers
with their result cache and IAM policy evaluation, request validators (required parameters, JSON Schema
draft 4 body models), gateway responses (the template's, else API Gateway's defaults), MOCK integrations
(CORS preflights) and AWS_PROXY integrations, whose REST proxy events (payload 1.0) run the deployed
function's real handler in this process. Lambda permissions are checked as API Gateway's calls would be.

Stage and method throttling are enforced as API Gateway applies them: a token bucket per method, at the
stage's default rate and burst unless the method has settings of its own; an empty bucket is a 429 before
the authorizer runs, counted per method (`ApiGatewayAdapter.throttled`).

Not emulated: the account-wide regional throttle, usage plans and API keys, IAM and Cognito authorization,
VTL mapping templates, and integration types other than AWS_PROXY and MOCK (loading a template that uses
any of these fails, naming the method). A WAF web ACL on the stage is not emulated either.

Requests outside the stage get API Gateway's plain 403 "Missing Authentication Token"; an empty body is
validated as `{}`; a body reaches the function base64-encoded when its content type is one of the API's
binary media types or not a text type, or when it is not UTF-8. One access-log line per request (the
stage's AccessLogSetting format) goes to the `local.aws.apigateway.access` logger at DEBUG.
"""

from local.aws.apigateway.definition import ApiDefinition, ApiDefinitionError, load_api
from local.aws.apigateway.server import ApiGatewayAdapter, Functions

__all__ = ["ApiDefinition", "ApiDefinitionError", "ApiGatewayAdapter", "Functions", "load_api"]
