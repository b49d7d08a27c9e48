"""A small declarative schema for YAML configs: every mistake becomes one located message.

A schema is built from validator objects (:class:`Int`, :class:`Float`, :class:`Section`, ...). Each
validator's ``check(value, path, problems)`` returns the normalised value, or appends
``"<path>: <what was wrong and what is right>"`` to ``problems`` and returns ``INVALID``. Checking
carries on after a mistake, so a config with three mistakes gets three messages at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmzoo.errors import did_you_mean


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
"""Returned by a validator for a value it rejected (the problem is already recorded)."""

REQUIRED: Any = object()
"""Default of a :class:`Field` that the config must set."""


def describe(value: Any) -> str:
    """How a wrong value is shown in a message: its repr, shortened, or its type for containers."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class Validator:
    """Base class: ``check`` normalises a value or records a problem."""

    expected = "a value"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        raise NotImplementedError

    def fail(self, value: Any, path: str, problems: list[str], expected: str | None = None) -> Any:
        problems.append(f"{path}: expected {expected or self.expected}, got {describe(value)}")
        return INVALID


@dataclass
class Int(Validator):
    minimum: int | None = None
    maximum: int | None = None

    @property
    def expected(self) -> str:  # type: ignore[override]
        return _bounded("int", self.minimum, self.maximum)

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(value, path, problems)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            return self.fail(value, path, problems)
        return value


@dataclass
class Float(Validator):
    """A number. Strings such as ``"1e-3"`` are accepted: YAML 1.1 reads ``1e-3`` as a string."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        if self.exclusive_minimum and self.minimum is not None:
            return f"float > {self.minimum:g}" + (
                f" and <= {self.maximum:g}" if self.maximum is not None else ""
            )
        return _bounded("float", self.minimum, self.maximum)

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            return self.fail(value, path, problems)
        too_low = self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        )
        if too_low or (self.maximum is not None and number > self.maximum):
            return self.fail(value, path, problems)
        return number


class Bool(Validator):
    expected = "true or false"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(value, bool):
            return self.fail(value, path, problems)
        return value


@dataclass
class Str(Validator):
    non_empty: bool = True
    expected = "a string"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(value, str) or (self.non_empty and not value.strip()):
            return self.fail(value, path, problems, "a non-empty string" if self.non_empty else None)
        return value


@dataclass
class Choice(Validator):
    choices: Sequence[str]

    @property
    def expected(self) -> str:  # type: ignore[override]
        options = ", ".join(repr(c) for c in self.choices)
        return options if len(self.choices) == 1 else f"one of {options}"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if isinstance(value, str) and value in self.choices:
            return value
        if isinstance(value, str) and value.lower() in self.choices:
            return value.lower()
        options = ", ".join(repr(c) for c in self.choices)
        hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
        problems.append(f"{path}: expected one of {options}, got {describe(value)}.{hint}".rstrip("."))
        return INVALID


@dataclass
class Optional(Validator):
    inner: Validator

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        return None if value is None else self.inner.check(value, path, problems)


@dataclass
class AnyOf(Validator):
    """The first alternative that accepts the value wins; otherwise one message naming all of them."""

    alternatives: Sequence[Validator]

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        for alternative in self.alternatives:
            scratch: list[str] = []
            result = alternative.check(value, path, scratch)
            if not scratch:
                return result
        expected = " or ".join(a.expected for a in self.alternatives)
        return self.fail(value, path, problems, expected)


@dataclass
class ListOf(Validator):
    item: Validator
    length: int | None = None

    @property
    def expected(self) -> str:  # type: ignore[override]
        size = f"{self.length} " if self.length else ""
        return f"a list of {size}{plural(self.item)}"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(value, list | tuple) or (self.length is not None and len(value) != self.length):
            return self.fail(value, path, problems)
        items = [self.item.check(v, join_path(path, i), problems) for i, v in enumerate(value)]
        return INVALID if any(v is INVALID for v in items) else items


@dataclass
class MapOf(Validator):
    """A mapping with free string keys, each value checked by ``value``."""

    value: Validator = field(default_factory=lambda: AnyValue())

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "a mapping"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(value, Mapping):
            return self.fail(value, path, problems)
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{join_path(path, str(key))}: keys must be strings, got {describe(key)}")
                continue
            result[key] = self.value.check(item, join_path(path, key), problems)
        return INVALID if any(v is INVALID for v in result.values()) else result


@dataclass
class Named(Validator):
    """A registered name (``"tensorboard"``) or a mapping ``{type: NAME, param: value, ...}``; normalised
    to the mapping form. Names are resolved (and parameters checked) later, against the registry."""

    expected = "a name or a mapping with 'type'"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if isinstance(value, str) and value.strip():
            return {"type": value.strip()}
        if isinstance(value, Mapping):
            kind = value.get("type")
            if not isinstance(kind, str) or not kind.strip():
                problems.append(f"{join_path(path, 'type')}: required, expected a non-empty string (the name)")
                return INVALID
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                problems.append(f"{join_path(path, str(bad[0]))}: keys must be strings, got {describe(bad[0])}")
                return INVALID
            return {**value, "type": kind.strip()}
        return self.fail(value, path, problems)


class AnyValue(Validator):
    """Anything YAML can hold; checked later by whoever consumes it (a dataset factory, a part)."""

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        return value


@dataclass
class Field:
    """One key of a :class:`Section`: how it is checked, its default (``REQUIRED``, a value, or a
    callable making one) and its help text. ``example`` is the value a reference config shows instead
    of the default (a required key has no default to show)."""

    validator: Validator
    default: Any = None
    help: str = ""
    example: Any = None


@dataclass
class Section(Validator):
    """A mapping with known keys. Unknown keys are mistakes with a did-you-mean.

    ``build`` (optional) turns the checked dict into an object (a dataclass) and may record
    cross-field problems through ``problems``. ``doc`` says what the section is for, beyond its
    fields' help (a reference config shows it above the section's keys).
    """

    fields: dict[str, Field]
    build: Callable[[dict[str, Any], str, list[str]], Any] | None = None
    doc: str = ""
    elsewhere: Mapping[str, str] = field(default_factory=dict)  # key -> where it lives, for the hint

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "a mapping"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            return self.fail(value, path, problems)
        before = len(problems)
        for key in value:
            if key not in self.fields:
                name = join_path(path, str(key))
                hint = did_you_mean(str(key), self.fields) or self._nested_hint(str(key))
                if not hint and key in self.elsewhere:
                    hint = f" It is set as {self.elsewhere[key]}."
                if not hint:
                    hint = " Known keys: " + ", ".join(self.fields) + "."
                problems.append(f"{name}: unknown key.{hint}")
        result: dict[str, Any] = {}
        for key, spec in self.fields.items():
            if key in value:
                result[key] = spec.validator.check(value[key], join_path(path, key), problems)
            elif spec.default is REQUIRED:
                problems.append(f"{join_path(path, key)}: required, expected {spec.validator.expected}")
                result[key] = INVALID
            else:
                default = spec.default
                result[key] = default() if callable(default) else default
        if len(problems) > before:
            return INVALID
        return self.build(result, path, problems) if self.build else result

    def _nested_hint(self, key: str) -> str:
        """For a key that belongs one level down (``find_unused_parameters`` under ``ddp``)."""
        for name, spec in self.fields.items():
            inner = spec.validator
            inner = inner.inner if isinstance(inner, Optional) else inner
            if isinstance(inner, Section) and key in inner.fields:
                return f" Did you mean '{name}.{key}'?"
        return ""


def plural(validator: Validator) -> str:
    """How a list's items are described: "strings", "floats in [0, 1]"."""
    text = validator.expected
    for singular, many in (
        ("a non-empty string", "non-empty strings"),
        ("a name or a mapping", "names or mappings"),
        ("a string", "strings"),
        ("float", "floats"),
        ("int", "ints"),
    ):
        if text.startswith(singular):
            return many + text[len(singular) :]
    return text


def _bounded(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"{kind} >= {minimum:g}"
    if maximum is not None:
        return f"{kind} <= {maximum:g}"
    return kind
