"""Taking the template's mappings over from moto's own event-source handling.

moto's CloudFormation creates each `AWS::Lambda::EventSourceMapping` and ties it to its table or queue. moto
then pushes every table write and every new message to the function itself: through Docker (which fails
here), with a made-up event, and, for a table, by emptying the stream's records once it has invoked. So
before the drivers start, each source is untied from the mapping's function: the mapping still exists in
moto's Lambda API, but only the driver consumes the source. This reaches into the moto that runs in this
process (as local mode does); a source that process does not hold has no moto mapping here to untie.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _resource(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN."""
    _, _, service, region, account, resource = arn.split(":", 5)
    return service, region, account, resource


def detach_moto_mapping(event_source_arn: str, function_arn: str) -> bool:
    """Untie moto's mapping of `function_arn` from the source; True if there was one."""
    service, region, account, resource = _resource(event_source_arn)
    mappings: dict[str, Any] | None = None
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[account][region].tables.get(resource.split("/")[1])
        mappings = table.lambda_event_source_mappings if table is not None else None
    elif service == "sqs":
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[account][region].queues.get(resource)
        mappings = queue.lambda_event_source_mappings if queue is not None else None
    if mappings is None:
        log.debug("no in-process moto source for %s", event_source_arn)
        return False
    ours = [key for key in mappings if key == function_arn or key.startswith(f"{function_arn}:")]  # any qualifier
    for key in ours:
        del mappings[key]
    return bool(ours)
