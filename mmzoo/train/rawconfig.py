"""The raw run config before validation: shorthands, ``--set KEY=VALUE`` overrides, and the one-line
form of a parser's error message."""

from __future__ import annotations

import copy
from typing import Any

from mmzoo.errors import ConfigError


def expand_shorthands(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn ``model: name`` and ``data.train: dataset`` into their mapping forms (before ``--set``)."""
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("model"), str):
        raw["model"] = {"name": raw["model"]}
    data = raw.get("data")
    if isinstance(data, dict):
        for split in ("train", "eval"):
            if isinstance(data.get(split), str):
                data[split] = {"dataset": data[split]}
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> (["optim", "lr"], 3e-4); the value is read with ``yaml.safe_load``."""
    import yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, like optim.lr=3e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({first_line(exc)})") from None
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set a.b=c`` overrides to the raw config, creating mappings on the way."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        set_dotted(raw, keys, value, f"--set {text!r}")
    return raw


def set_dotted(raw: dict[str, Any], keys: list[str], value: Any, where: str) -> None:
    """Set ``raw[k1][k2]...`` to ``value``, creating mappings on the way; a ConfigError (located by
    ``where``) when a value on the way is not a mapping."""
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            at = ".".join(keys[: depth + 1])
            raise ConfigError(f"{where}: '{at}' is {type(child).__name__} {child!r}, not a mapping, "
                              f"so it has no key '{keys[depth + 1]}'")
        node = child
    node[keys[-1]] = value


def first_line(exc: BaseException) -> str:
    """An exception's first message line (its type name when it has no message), for one-line errors."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
