"""Finding the resource of a request path, as API Gateway matches REST API resources.

A literal path part wins over `{param}`, which wins over a greedy `{param+}`; a greedy part takes the
rest of the path (one segment or more). Segments are split on `/` before decoding, so an encoded slash
stays inside its path parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from local.aws.apigateway.definition import ResourceNode


@dataclass(frozen=True)
class Route:
    node: ResourceNode
    path_parameters: dict[str, str]


def split_path(raw_path: str) -> list[str] | None:
    """The raw path's segments (still encoded); None for an empty segment, which matches no resource."""
    trimmed = raw_path.strip("/")
    if not trimmed:
        return []
    segments = trimmed.split("/")
    return None if any(not segment for segment in segments) else segments


def match(root: ResourceNode, segments: list[str]) -> Route | None:
    found = _match(root, segments, {})
    return Route(found[0], found[1]) if found else None


def _order(node: ResourceNode) -> int:
    if node.variable is None:
        return 0
    return 2 if node.greedy else 1


def _match(
    node: ResourceNode, segments: list[str], parameters: dict[str, str]
) -> tuple[ResourceNode, dict[str, str]] | None:
    if not segments:
        return node, parameters
    head, rest = segments[0], segments[1:]
    for child in sorted(node.children, key=_order):
        name = child.variable
        if name is None:
            if unquote(head) != child.path_part:
                continue
            found = _match(child, rest, parameters)
        elif child.greedy:
            found = child, {**parameters, name: unquote("/".join(segments))}
        else:
            found = _match(child, rest, {**parameters, name: unquote(head)})
        if found is not None:
            return found
    return None
