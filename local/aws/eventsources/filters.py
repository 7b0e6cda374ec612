"""Lambda event filtering: the subset of EventBridge pattern syntax that event-source mappings accept.

A pattern is a JSON object whose leaves are arrays of conditions; a record matches when every field the
pattern names satisfies at least one of its conditions. A mapping keeps a record when any of its
`FilterCriteria.Filters` patterns matches. Conditions: exact values (string, number, boolean, null),
`anything-but`, `prefix`, `suffix`, `equals-ignore-case`, `exists` and `numeric`, and `$or` over several
fields. Anything else is a `PatternError` (a `ValueError`) when the pattern is compiled: a filter this
module cannot evaluate never lets records through.

As in EventBridge, `exists` looks at leaves only (a field holding an object does not "exist" for it),
every other condition needs the field to be present, and a condition on a field holding an array is met
when any element meets it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool | None

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LOWER = {">", ">="}
_UPPER = {"<", "<="}
_MISSING = object()


class PatternError(ValueError):
    """A filter pattern this module cannot evaluate; the message says where in the pattern and why."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(pattern_value: Scalar, value: Any) -> bool:
    """JSON equality: numbers compare as numbers, and `true` is not `1`."""
    if _is_number(pattern_value):
        return _is_number(value) and float(value) == float(pattern_value)  # type: ignore[arg-type]
    if isinstance(pattern_value, bool):
        return isinstance(value, bool) and value is pattern_value
    if pattern_value is None:
        return value is None
    return isinstance(value, str) and value == pattern_value


class Condition:
    """One element of a leaf array."""

    def holds(self, value: Any) -> bool:
        """Whether a present, non-object value meets the condition."""
        raise NotImplementedError

    def on_absent(self) -> bool:
        """Whether the condition holds for a field the record does not have (at the leaf level)."""
        return False


@dataclass(frozen=True)
class Exact(Condition):
    value: Scalar

    def holds(self, value: Any) -> bool:
        return _same(self.value, value)


@dataclass(frozen=True)
class Prefix(Condition):
    prefix: str

    def holds(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.prefix)


@dataclass(frozen=True)
class Suffix(Condition):
    suffix: str

    def holds(self, value: Any) -> bool:
        return isinstance(value, str) and value.endswith(self.suffix)


@dataclass(frozen=True)
class IgnoreCase(Condition):
    value: str

    def holds(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.value.casefold()


@dataclass(frozen=True)
class AnythingBut(Condition):
    excluded: tuple[Condition, ...]

    def holds(self, value: Any) -> bool:
        return not any(condition.holds(value) for condition in self.excluded)


@dataclass(frozen=True)
class Exists(Condition):
    wanted: bool

    def holds(self, value: Any) -> bool:
        return self.wanted

    def on_absent(self) -> bool:
        return not self.wanted


@dataclass(frozen=True)
class Numeric(Condition):
    comparisons: tuple[tuple[str, float], ...]

    def holds(self, value: Any) -> bool:
        return _is_number(value) and all(_COMPARISONS[op](float(value), bound) for op, bound in self.comparisons)


@dataclass(frozen=True)
class Leaf:
    conditions: tuple[Condition, ...]

    def matches(self, value: Any) -> bool:
        if value is _MISSING or isinstance(value, dict):
            return any(condition.on_absent() for condition in self.conditions)
        if isinstance(value, list):
            if not value:
                return any(condition.on_absent() for condition in self.conditions)
            return any(self.matches(item) for item in value)
        return any(condition.holds(value) for condition in self.conditions)


@dataclass(frozen=True)
class Pattern:
    fields: tuple[tuple[str, Pattern | Leaf], ...]
    # Each `$or` at this level: the object matches when any of its alternatives does.
    alternatives: tuple[tuple[Pattern, ...], ...] = ()

    def matches(self, record: Any) -> bool:
        if isinstance(record, list):
            return any(self.matches(item) for item in record) if record else self.matches({})
        fields: Mapping[str, Any] = record if isinstance(record, dict) else {}
        for name, rule in self.fields:
            value = fields.get(name, _MISSING)
            if isinstance(rule, Pattern):
                if not rule.matches(value if value is not _MISSING else {}):
                    return False
            elif not rule.matches(value):
                return False
        return all(any(option.matches(fields) for option in options) for options in self.alternatives)


# -- compiling -------------------------------------------------------------------------------------


def _where(path: Sequence[str]) -> str:
    return ".".join(path) or "<pattern>"


def _scalar(value: Any, path: Sequence[str], what: str) -> Scalar:
    if value is None or isinstance(value, str | bool) or _is_number(value):
        return value  # type: ignore[no-any-return]
    raise PatternError(f"filter pattern at {_where(path)}: {what} must be a string, number, boolean or null")


def _string(value: Any, path: Sequence[str], operator_name: str) -> str:
    if not isinstance(value, str):
        raise PatternError(f"filter pattern at {_where(path)}: {operator_name!r} takes a string, got {value!r}")
    return value


def _anything_but(argument: Any, path: Sequence[str]) -> AnythingBut:
    if isinstance(argument, dict):
        if len(argument) != 1:
            raise PatternError(f"filter pattern at {_where(path)}: 'anything-but' takes one operator, got {argument!r}")
        ((name, value),) = argument.items()
        if name == "prefix":
            return AnythingBut((Prefix(_string(value, path, "prefix")),))
        if name == "suffix":
            return AnythingBut((Suffix(_string(value, path, "suffix")),))
        if name == "equals-ignore-case":
            values = value if isinstance(value, list) else [value]
            return AnythingBut(tuple(IgnoreCase(_string(v, path, name)) for v in values))
        raise PatternError(f"filter pattern at {_where(path)}: unsupported operator {name!r} inside 'anything-but'")
    values = argument if isinstance(argument, list) else [argument]
    if not values:
        raise PatternError(f"filter pattern at {_where(path)}: 'anything-but' needs at least one value")
    excluded = []
    for value in values:
        if not (isinstance(value, str) or _is_number(value)):
            raise PatternError(
                f"filter pattern at {_where(path)}: 'anything-but' values must be strings or numbers, got {value!r}"
            )
        excluded.append(Exact(value))
    return AnythingBut(tuple(excluded))


def _numeric(argument: Any, path: Sequence[str]) -> Numeric:
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise PatternError(
            f"filter pattern at {_where(path)}: 'numeric' takes [op, number] or [op, number, op, number], "
            f"got {argument!r}"
        )
    comparisons: list[tuple[str, float]] = []
    for op, bound in zip(argument[::2], argument[1::2], strict=True):
        if op not in _COMPARISONS:
            raise PatternError(f"filter pattern at {_where(path)}: unknown numeric operator {op!r}")
        if not _is_number(bound):
            raise PatternError(f"filter pattern at {_where(path)}: numeric bound must be a number, got {bound!r}")
        comparisons.append((op, float(bound)))
    if len(comparisons) == 2:
        ops = {comparisons[0][0], comparisons[1][0]}
        if not (ops & _LOWER and ops & _UPPER):
            raise PatternError(
                f"filter pattern at {_where(path)}: a numeric range needs one lower (>, >=) and one upper (<, <=) bound"
            )
    return Numeric(tuple(comparisons))


def _condition(item: Any, path: Sequence[str]) -> Condition:
    if not isinstance(item, dict):
        if isinstance(item, list):
            raise PatternError(f"filter pattern at {_where(path)}: arrays cannot nest")
        return Exact(_scalar(item, path, "a value to match"))
    if len(item) != 1:
        raise PatternError(f"filter pattern at {_where(path)}: a condition takes exactly one operator, got {item!r}")
    ((name, argument),) = item.items()
    if name == "anything-but":
        return _anything_but(argument, path)
    if name == "prefix":
        return Prefix(_string(argument, path, name))
    if name == "suffix":
        return Suffix(_string(argument, path, name))
    if name == "equals-ignore-case":
        return IgnoreCase(_string(argument, path, name))
    if name == "exists":
        if not isinstance(argument, bool):
            raise PatternError(f"filter pattern at {_where(path)}: 'exists' takes true or false, got {argument!r}")
        return Exists(argument)
    if name == "numeric":
        return _numeric(argument, path)
    raise PatternError(f"filter pattern at {_where(path)}: unsupported operator {name!r}")


def _compile(pattern: Any, path: tuple[str, ...]) -> Pattern:
    if not isinstance(pattern, dict):
        raise PatternError(f"filter pattern at {_where(path)}: expected an object, got {type(pattern).__name__}")
    if not pattern:
        raise PatternError(f"filter pattern at {_where(path)}: an object needs at least one field")
    fields: list[tuple[str, Pattern | Leaf]] = []
    alternatives: list[tuple[Pattern, ...]] = []
    for name, rule in pattern.items():
        here = (*path, name)
        if name == "$or":
            if not isinstance(rule, list) or len(rule) < 2:
                raise PatternError(f"filter pattern at {_where(here)}: '$or' takes an array of at least two objects")
            alternatives.append(tuple(_compile(option, here) for option in rule))
        elif name.startswith("$"):
            raise PatternError(f"filter pattern at {_where(here)}: unsupported operator {name!r}")
        elif isinstance(rule, dict):
            fields.append((name, _compile(rule, here)))
        elif isinstance(rule, list):
            if not rule:
                raise PatternError(f"filter pattern at {_where(here)}: an empty array matches nothing")
            fields.append((name, Leaf(tuple(_condition(item, here) for item in rule))))
        else:
            raise PatternError(f"filter pattern at {_where(here)}: leaf values must be arrays, got {rule!r}")
    return Pattern(tuple(fields), tuple(alternatives))


def compile_pattern(pattern: Mapping[str, Any] | str) -> Pattern:
    """A pattern (a dict, or the JSON string a template holds), checked and ready to match."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as exc:
            raise PatternError(f"filter pattern is not JSON: {exc}") from exc
    return _compile(pattern, ())


def matches(pattern: Mapping[str, Any] | str, record: Mapping[str, Any]) -> bool:
    return compile_pattern(pattern).matches(record)


@dataclass(frozen=True)
class FilterSet:
    """A mapping's `FilterCriteria`: no patterns keeps every record; otherwise any matching pattern does."""

    patterns: tuple[Pattern, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[Mapping[str, Any] | str]) -> FilterSet:
        return cls(tuple(compile_pattern(pattern) for pattern in patterns))

    def keeps(self, record: Mapping[str, Any]) -> bool:
        return not self.patterns or any(pattern.matches(record) for pattern in self.patterns)
