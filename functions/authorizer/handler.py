"""API Gateway REQUEST authorizer: a Bearer API key, checked by its SHA-256 hash, names the tenant."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger
from shared.runtime import get_runtime
from shared.services.auth import authenticate


class Unauthorized(Exception):
    """API Gateway answers 401 when an authorizer fails with exactly this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    identity = authenticate(get_runtime(), headers.get("authorization"))
    if identity is None:
        raise Unauthorized
    arn = event.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=identity.tenant_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"tenant_id": identity.tenant_id, "key_id": identity.key_id},
        # Without it API Gateway answers 403: a tenant not provisioned with a usage plan key is not served.
        usage_identifier_key=identity.usage_key,
    )
    # Results are cached per key for every route, so the policy must cover every route.
    policy.allow_all_routes()
    return policy.asdict()
