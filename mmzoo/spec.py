"""Model specs: one schema for registry.yaml entries, training configs and the Hub's config.json.

A spec is a mapping with ``encoders`` (batch key -> part), ``fusion`` and ``head``; a part is a
mapping whose ``type`` names a registered part and whose other keys are its parameters (or just
the type name as a string). Parsing checks structure only and never imports a part; parameter
names and types are checked against the part's signature when it is built
(:func:`check_params`). Every mistake is a :class:`~mmzoo.errors.SpecError` that says where.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

from mmzoo.errors import SpecError, did_you_mean

SPEC_KEYS = ("encoders", "fusion", "head")
ENTRY_KEYS = (*SPEC_KEYS, "description", "weights")
WEIGHT_KEYS = ("repo", "revision", "file", "sha256")
RESERVED_BATCH_KEYS = ("target",)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with ``yaml.safe_load``; errors name the file, line and column."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read it ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}{at}: invalid YAML: {problem}") from None


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            raise SpecError(f"{where}.{key}: unknown key; expected one of {', '.join(allowed)}.{hint}")


def parse_part(value: Any, where: str) -> dict:
    """Normalise one part to ``{"type": name, **params}``."""
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a mapping with a 'type' (or a part name), got {_type_name(value)}")
    if "type" not in value:
        raise SpecError(f"{where}: missing 'type' (the registered name of the part)")
    if not isinstance(value["type"], str) or not value["type"].strip():
        raise SpecError(f"{where}.type: expected a part name, got {value['type']!r}")
    for key in value:
        if not isinstance(key, str) or not key.isidentifier():
            raise SpecError(f"{where}: parameter names must be identifiers, got {key!r}")
    return copy.deepcopy(value)


def parse_spec(data: Any, where: str = "spec", *, allowed: tuple[str, ...] = SPEC_KEYS) -> dict:
    """Check the structure of a spec and return it normalised (a new dict)."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping with encoders, fusion and head, got {_type_name(data)}")
    _check_keys(data, allowed, where)
    for key in SPEC_KEYS:
        if key not in data:
            raise SpecError(f"{where}: missing '{key}'")
    encoders = data["encoders"]
    if not isinstance(encoders, dict):
        raise SpecError(f"{where}.encoders: expected a mapping of batch key -> encoder, got "
                        f"{_type_name(encoders)}")
    if not encoders:
        raise SpecError(f"{where}.encoders: needs at least one encoder (batch key -> encoder)")
    spec: dict = {"encoders": {}}
    for key, part in encoders.items():
        if not isinstance(key, str) or not key:
            raise SpecError(f"{where}.encoders: batch keys must be non-empty strings, got {key!r}")
        if key in RESERVED_BATCH_KEYS:
            raise SpecError(f"{where}.encoders.{key}: '{key}' is reserved for labels; name the input otherwise")
        spec["encoders"][key] = parse_part(part, f"{where}.encoders.{key}")
    spec["fusion"] = parse_part(data["fusion"], f"{where}.fusion")
    spec["head"] = parse_part(data["head"], f"{where}.head")
    return spec


def parse_weights(data: Any, where: str) -> dict[str, dict]:
    """Normalise ``weights:`` to ``{tag: {"repo", "revision", "file", "sha256"}}``.

    Either one location (``{repo: ..., revision: ...}``, tag ``default``) or a mapping of tags to
    locations; the first tag is the default of ``create_model(name, pretrained=True)``.
    """
    if not isinstance(data, dict) or not data:
        raise SpecError(f"{where}: expected a mapping like {{repo: org/name, revision: <sha>}} "
                        f"or tag -> such a mapping, got {_type_name(data)}")
    tagged = {"default": data} if "repo" in data else data
    out = {}
    for tag, ref in tagged.items():
        at = where if tagged is not data else f"{where}.{tag}"
        if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", tag):
            raise SpecError(f"{where}: weight tags must be words like 'in1k', got {tag!r}")
        if not isinstance(ref, dict):
            raise SpecError(f"{at}: expected a mapping with repo, revision, file, sha256, got {_type_name(ref)}")
        _check_keys(ref, WEIGHT_KEYS, at)
        if not isinstance(ref.get("repo"), str) or ref["repo"].count("/") != 1:
            raise SpecError(f"{at}.repo: expected a Hub repo id like 'org/name', got {ref.get('repo')!r}")
        for key in ("revision", "file"):
            if key in ref and (not isinstance(ref[key], str) or not ref[key]):
                raise SpecError(f"{at}.{key}: expected a string, got {ref[key]!r}")
        if "sha256" in ref and (not isinstance(ref["sha256"], str) or not _SHA256.match(ref["sha256"])):
            raise SpecError(f"{at}.sha256: expected 64 lowercase hex digits, got {ref['sha256']!r}")
        out[tag] = {"repo": ref["repo"], "revision": ref.get("revision"),
                    "file": ref.get("file", "model.safetensors"), "sha256": ref.get("sha256")}
    return out


def parse_registry_entry(name: str, data: Any, where: str) -> dict:
    """Check one ``models.<name>`` entry; returns the fields of a ``ModelEntry``."""
    spec = parse_spec(data, where, allowed=ENTRY_KEYS)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{where}.description: expected a string, got {_type_name(description)}")
    weights = parse_weights(data["weights"], f"{where}.weights") if data.get("weights") is not None else {}
    return {"spec": spec, "description": description, "weights": weights}


def merge_overrides(spec: dict, overrides: dict, where: str = "overrides") -> dict:
    """Apply ``encoders=``/``fusion=``/``head=`` overrides; a changed ``type`` replaces the part."""
    merged = copy.deepcopy(spec)
    for key, value in overrides.items():
        if key not in SPEC_KEYS:
            raise SpecError(f"{where}: unknown override '{key}'; expected one of "
                            f"{', '.join(SPEC_KEYS)}.{did_you_mean(key, SPEC_KEYS)}")
        if value is None:
            continue
        if key == "encoders":
            if not isinstance(value, dict):
                raise SpecError(f"{where}.encoders: expected batch key -> part mapping, got {_type_name(value)}")
            for enc_key, part in value.items():
                current = merged["encoders"].get(enc_key)
                merged["encoders"][enc_key] = _merge_part(current, part, f"{where}.encoders.{enc_key}")
        else:
            merged[key] = _merge_part(merged[key], value, f"{where}.{key}")
    return parse_spec(merged, where)


def _merge_part(current: dict | None, change: Any, where: str) -> dict:
    if isinstance(change, str):
        change = {"type": change}
    if not isinstance(change, dict):
        raise SpecError(f"{where}: expected a mapping of parameters, got {_type_name(change)}")
    if current is None or ("type" in change and change["type"] != current.get("type")):
        return parse_part(change, where)
    return {**current, **copy.deepcopy(change)}


# ----- parameter checks against a part's signature ------------------------------------------
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
