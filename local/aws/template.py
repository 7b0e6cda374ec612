"""The synthesized CloudFormation template, and resolving its intrinsic functions against physical values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.names import STACK_NAME

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
    "AWS::NoValue": None,
}

RefLookup = Callable[[str], Any]
AttLookup = Callable[[str, str], Any]


class UnresolvableError(Exception):
    """A reference the resolver cannot answer (yet): the caller decides whether that is an error."""


@dataclass
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(json.loads(path.read_text()))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def one(self, resource_type: str, name_contains: str = "") -> tuple[str, dict[str, Any]]:
        found = [(n, r) for n, r in self.of_type(resource_type).items() if name_contains in n]
        if len(found) != 1:
            raise LookupError(f"expected one {resource_type} matching {name_contains!r}, found {len(found)}")
        return found[0]

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: p.get("Default") for name, p in self.body.get("Parameters", {}).items()}


def references(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str) and not value["Ref"].startswith("AWS::"):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text) if not m.startswith("AWS::"))
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


class Resolver:
    """Evaluates Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select and Fn::Split."""

    def __init__(self, ref: RefLookup, att: AttLookup, parameters: dict[str, Any] | None = None) -> None:
        self._ref = ref
        self._att = att
        self._parameters = parameters or {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._att(name, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(part) for part in self(parts))
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self(text)).split(separator)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::"):
                raise UnresolvableError(f"{key} is not supported here")
        return {k: self(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._ref(name)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                name, attribute = token.split(".", 1)
                return str(self._att(name, attribute))
            return str(self.ref(token))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)
