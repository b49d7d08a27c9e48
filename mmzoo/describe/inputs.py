"""What raw input each encoder of a model expects, as ``mmzoo info`` shows it.

An encoder may describe its raw input itself with an optional ``raw_input`` attribute (``mmzoo.RawInput``:
``kind``, ``size``, ``channels``, ``sample_rate``, ``max_seconds``, ``max_length``, ``dim``, ``accepts``,
``description``; read here
duck-typed, from a dataclass, a mapping or plain attributes). Without one, this says what can be said:
the modality its plugin registered, and the common settings it exposes (``sample_rate``,
``max_length``, ``in_dim``...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

RAW_INPUT_FIELDS = ("kind", "size", "channels", "sample_rate", "max_seconds", "max_length", "dim", "accepts",
                    "description")
# Attributes encoders commonly expose, and the raw-input field each one tells.
_SETTINGS = (("sample_rate", "sample_rate"), ("sampling_rate", "sample_rate"), ("max_length", "max_length"),
             ("in_dim", "size"), ("image_size", "size"), ("img_size", "size"), ("in_channels", "channels"),
             ("in_chans", "channels"))


def describe_input(encoder: Any, modalities: tuple[str, ...]) -> dict[str, Any]:
    """The raw input ``encoder`` expects, as plain data; ``declared`` tells whether the encoder said so
    itself (``raw_input``) or it was inferred."""
    declared = getattr(encoder, "raw_input", None)
    if declared is not None:
        found = _fields(declared)
        if found:
            found.setdefault("kind", "|".join(modalities) or None)
            return {**{k: v for k, v in found.items() if v is not None}, "declared": True}
    out: dict[str, Any] = {"kind": "|".join(modalities) or None}
    for attr, name in _SETTINGS:
        value = _plain(getattr(encoder, attr, None))
        if value is not None and name not in out:
            out[name] = value
    return {**{k: v for k, v in out.items() if v is not None}, "declared": False}


def _fields(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        raw = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif isinstance(value, Mapping):
        raw = dict(value)
    else:
        raw = {name: getattr(value, name, None) for name in RAW_INPUT_FIELDS}
    return {str(k): _plain(v) for k, v in raw.items() if _plain(v) is not None}


def _plain(value: Any) -> Any:
    """``value`` as JSON data (numbers, one-line strings, lists of them), or None."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return value if value.isprintable() and len(value) <= 200 else None
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return items if items and all(v is not None for v in items) else None
    return None


def input_text(found: Mapping[str, Any]) -> str:
    """One line for a raw input description: ``image, 3 channels, 224x224 (accepts path, PIL image)``."""
    parts = [str(found.get("kind") or "unknown")]
    if found.get("channels"):
        parts.append(f"{found['channels']} channel" + ("s" if found["channels"] != 1 else ""))
    size = found.get("size")
    if size:
        parts.append("x".join(map(str, size)) if isinstance(size, list) else f"size {size}")
    if found.get("sample_rate"):
        parts.append(f"{found['sample_rate']} Hz")
    if found.get("max_seconds"):
        parts.append(f"at most {found['max_seconds']:g} s")
    if found.get("max_length"):
        parts.append(f"max length {found['max_length']}")
    if found.get("dim"):
        parts.append(f"{found['dim']} numbers")
    text = ", ".join(parts)
    accepts = found.get("accepts")
    if accepts:
        text += f" (accepts {', '.join(map(str, accepts)) if isinstance(accepts, list) else accepts})"
    if found.get("description"):
        text += f": {found['description']}"
    return text + ("" if found.get("declared") else " [inferred]")
