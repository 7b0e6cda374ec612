"""Evaluating an authorizer's IAM policy for `execute-api:Invoke` on one method ARN, as IAM does.

An explicit Deny wins over any Allow; without a matching Allow the request is denied. `*` matches any
run of characters (slashes included) and `?` any one character; actions match case-insensitively,
resources case-sensitively. Conditions are not evaluated: an Allow with a Condition never applies and a
Deny with one applies as if its condition held, so a policy the adapter cannot judge fails closed.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

ACTION = "execute-api:Invoke"


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str | dict) else value


Strings = Annotated[list[str], BeforeValidator(_listed)]


class Statement(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    effect: Literal["Allow", "Deny"] = Field(alias="Effect")
    action: Strings | None = Field(default=None, alias="Action")
    not_action: Strings | None = Field(default=None, alias="NotAction")
    resource: Strings | None = Field(default=None, alias="Resource")
    not_resource: Strings | None = Field(default=None, alias="NotResource")
    condition: dict[str, Any] | None = Field(default=None, alias="Condition")

    @model_validator(mode="after")
    def _one_of_each(self) -> Statement:
        if (self.action is None) == (self.not_action is None):
            raise ValueError("a statement needs exactly one of Action and NotAction")
        if (self.resource is None) == (self.not_resource is None):
            raise ValueError("a statement needs exactly one of Resource and NotResource")
        return self

    def applies(self, action: str, resource: str) -> bool:
        if self.action is not None:
            action_ok = any(wildcard(p, action, case_sensitive=False) for p in self.action)
        else:
            action_ok = not any(wildcard(p, action, case_sensitive=False) for p in self.not_action or [])
        if self.resource is not None:
            resource_ok = any(wildcard(p, resource) for p in self.resource)
        else:
            resource_ok = not any(wildcard(p, resource) for p in self.not_resource or [])
        return action_ok and resource_ok


class PolicyDocument(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    version: str | None = Field(default=None, alias="Version")
    statements: Annotated[list[Statement], BeforeValidator(_listed)] = Field(alias="Statement")


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@lru_cache(maxsize=1024)
def _pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return _pattern(pattern, case_sensitive).fullmatch(value) is not None


def evaluate(policy: PolicyDocument, resource: str, action: str = ACTION) -> Decision:
    allowed = False
    for statement in policy.statements:
        if statement.effect == "Deny":
            if statement.applies(action, resource):
                return Decision.EXPLICIT_DENY
        elif statement.condition is None and statement.applies(action, resource):
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
