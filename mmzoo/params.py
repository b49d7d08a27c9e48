"""The one parameter checker: parameters from a spec or config against the factory that takes them.

Parts (``create_model``) and datasets (``create_dataset``, or a dataset factory called directly) are
checked here, before anything is built: an unknown parameter (with the accepted ones and a close
match), a missing required one, or a value of the wrong type is a :class:`~mmzoo.errors.SpecError`
saying where, whichever way the factory was reached. Annotations that cannot be resolved are not
checked.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

from mmzoo.errors import SpecError, did_you_mean


def check_params(factory: Any, params: dict, where: str, *, leading: int = 0) -> None:
    """Check ``params`` against ``factory``'s signature: unknown, missing and mistyped values.

    ``leading`` positional arguments (a fusion's ``input_dims``, a head's ``input_dim``) are
    supplied by the builder and not checked.
    """
    target = getattr(factory, "__wrapped__", factory)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return
    leading += 1 if getattr(factory, "__mmzoo_family_member__", False) else 0
    accepts = list(sig.parameters.values())[leading:]
    names = {p.name: p for p in accepts if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepts)
    hints = _type_hints(target)
    for key, value in params.items():
        if key not in names:
            if takes_any:
                continue
            choices = list(names)
            raise SpecError(f"{where}.{key}: unknown parameter; {_callable_name(target)} accepts "
                            f"{', '.join(choices) or 'no parameters'}.{did_you_mean(key, choices)}")
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            raise SpecError(f"{where}.{key}: expected {_describe(expected)}, got {value!r}")
    for name, param in names.items():
        if name in params:
            continue
        if param.default is inspect.Parameter.empty and param.kind != param.POSITIONAL_ONLY:
            raise SpecError(f"{where}.{name}: required parameter missing for {_callable_name(target)}")


def _callable_name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def _type_hints(obj: Any) -> dict:
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(fn)
    except Exception:  # annotations naming types we cannot resolve are simply not checked
        return {}


def _matches(value: Any, expected: Any) -> bool:
    if expected is Any or expected is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if expected is type(None):
        return value is None
    base = origin or expected
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    if base in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if isinstance(base, type):
        try:
            return isinstance(value, base)
        except TypeError:
            return True
    return True


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(expected))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(expected))
    if expected is type(None):
        return "null"
    base = origin or expected
    return getattr(base, "__name__", str(base))
