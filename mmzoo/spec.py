"""Model specs: one schema for registry.yaml entries, training configs and the Hub's config.json.

In YAML or JSON a spec is a mapping with ``encoders`` (batch key -> part), ``fusion`` and ``head``;
a part is a mapping whose ``type`` names a registered part and whose other keys are its parameters
(or just the type name as a string). :class:`Spec` is the same thing typed and frozen: every part
is a :class:`PartRef` with its ``path`` (``encoders.image``, ``fusion``, ``head``), ``kind``,
``name`` and ``params``, and :meth:`Spec.parts` walks them in build order.

Parsing checks structure only and never imports a part; parameter names and types are checked
against the part's signature when it is built (:func:`mmzoo.params.check_params`). Every mistake is
a :class:`~mmzoo.errors.SpecError` that says where.
"""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmzoo.errors import MmzooError, SpecError, did_you_mean

#: The kinds of part a model is made of, in build order. The registry adds ``dataset``.
KINDS = ("encoder", "fusion", "head")
#: The spec key that holds each kind's part(s).
SECTIONS = {"encoder": "encoders", "fusion": "fusion", "head": "head"}
#: Kinds with one part per batch key (``encoders: {image: ..., text: ...}``); the others have one part.
KEYED_KINDS = frozenset({"encoder"})
SPEC_KEYS = tuple(SECTIONS[kind] for kind in KINDS)
ENTRY_KEYS = (*SPEC_KEYS, "description", "weights")
WEIGHT_KEYS = ("repo", "revision", "file", "sha256")
RESERVED_BATCH_KEYS = ("target", "present")  # labels; which examples have which input
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_yaml(path: str | Path, *, error: type[MmzooError] = SpecError, what: str = "file") -> Any:
    """Read a YAML file with ``yaml.safe_load`` (never anything that runs code).

    Every problem raises ``error`` naming the file (and the line and column of a syntax error);
    ``what`` is how the messages call the file (``"config file"``). Returns whatever the file holds.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what} ({type(exc).__name__}: {exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise error(f"{path}{at}: invalid YAML: {problem}") from None


def type_name(value: object) -> str:
    """How messages name the type of a value read from YAML or JSON."""
    return "null" if value is None else type(value).__name__


def check_keys(data: Mapping, allowed: tuple[str, ...], where: str) -> None:
    """Raise a SpecError for the first key of ``data`` that is not ``allowed`` (with a close match)."""
    for key in data:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            raise SpecError(f"{where}.{key}: unknown key; expected one of {', '.join(allowed)}.{hint}")


@dataclass(frozen=True, eq=True)
class PartRef:
    """One part of a spec: where it sits, what kind it is, which registered part and its parameters.

    ``params`` is read-only; :meth:`to_dict` gives the ``{"type": name, **params}`` form (a copy).
    """

    path: str  # "encoders.image", "fusion", "head"
    kind: str  # one of KINDS
    name: str  # the registered part name (the spec's "type")
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", types.MappingProxyType(copy.deepcopy(dict(self.params))))

    __hash__ = None  # parameters are mappings: a PartRef is compared, never hashed

    @property
    def key(self) -> str | None:
        """The batch key of a keyed part (``image`` for ``encoders.image``); None for fusion and head."""
        return self.path.split(".", 1)[1] if "." in self.path else None

    def to_dict(self) -> dict[str, Any]:
        """The part as the spec schema writes it: ``{"type": name, **params}``."""
        return {"type": self.name, **copy.deepcopy(dict(self.params))}

    def __repr__(self) -> str:
        return f"PartRef({self.path!r}, kind={self.kind!r}, name={self.name!r}, params={dict(self.params)!r})"

    @classmethod
    def parse(cls, value: Any, *, path: str, kind: str, where: str) -> PartRef:
        """A part from its schema form (``{"type": ..., **params}`` or a bare name); ``where`` locates errors."""
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, Mapping):
            raise SpecError(f"{where}: expected a mapping with a 'type' (or a part name), got {type_name(value)}")
        if "type" not in value:
            raise SpecError(f"{where}: missing 'type' (the registered name of the part)")
        if not isinstance(value["type"], str) or not value["type"].strip():
            raise SpecError(f"{where}.type: expected a part name, got {value['type']!r}")
        for key in value:
            if not isinstance(key, str) or not key.isidentifier():
                raise SpecError(f"{where}: parameter names must be identifiers, got {key!r}")
        return cls(path, kind, value["type"], {k: v for k, v in value.items() if k != "type"})


@dataclass(frozen=True, eq=True)
class Spec:
    """A model's composition: its parts, typed and frozen. Build one with :meth:`from_dict`.

    ``spec.encoders`` (batch key -> :class:`PartRef`), ``spec.fusion`` and ``spec.head`` name each
    part; :meth:`parts` walks all of them in build order; :meth:`to_dict` gives the schema of
    ``registry.yaml`` and ``config.json`` back.
    """

    part_refs: tuple[PartRef, ...]

    __hash__ = None

    # ----- reading ---------------------------------------------------------------------------
    def parts(self, kind: str | None = None) -> tuple[PartRef, ...]:
        """Every part in build order (encoders by batch key, then fusion, then head), or one kind's."""
        return self.part_refs if kind is None else tuple(p for p in self.part_refs if p.kind == kind)

    def part(self, path: str) -> PartRef:
        """The part at ``path`` (``encoders.image``, ``fusion``, ``head``)."""
        for ref in self.part_refs:
            if ref.path == path:
                return ref
        raise SpecError(f"no part '{path}' in this spec; parts: {', '.join(self.paths())}."
                        f"{did_you_mean(path, self.paths())}")

    def paths(self) -> list[str]:
        """The path of every part, in build order."""
        return [ref.path for ref in self.part_refs]

    @property
    def encoders(self) -> dict[str, PartRef]:
        """Batch key -> encoder part."""
        return {ref.key: ref for ref in self.parts("encoder")}

    @property
    def fusion(self) -> PartRef:
        return self.parts("fusion")[0]

    @property
    def head(self) -> PartRef:
        return self.parts("head")[0]

    def __iter__(self) -> Iterator[PartRef]:
        return iter(self.part_refs)

    # ----- the dict schema ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, where: str = "spec", *, allowed: tuple[str, ...] = SPEC_KEYS) -> Spec:
        """Check a spec in its schema form and return it typed. ``allowed``: the top-level keys
        accepted (a registry entry also has ``description`` and ``weights``, ignored here)."""
        if isinstance(data, Spec):
            return data
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a mapping with encoders, fusion and head, got {type_name(data)}")
        check_keys(data, allowed, where)
        for key in SPEC_KEYS:
            if key not in data:
                raise SpecError(f"{where}: missing '{key}'")
        refs: list[PartRef] = []
        for kind in KINDS:
            section = SECTIONS[kind]
            if kind not in KEYED_KINDS:
                refs.append(PartRef.parse(data[section], path=section, kind=kind, where=f"{where}.{section}"))
                continue
            keyed = data[section]
            if not isinstance(keyed, Mapping):
                raise SpecError(f"{where}.{section}: expected a mapping of batch key -> {kind}, got "
                                f"{type_name(keyed)}")
            if not keyed:
                raise SpecError(f"{where}.{section}: needs at least one {kind} (batch key -> {kind})")
            for key, value in keyed.items():
                if not isinstance(key, str) or not key or "." in key:
                    raise SpecError(f"{where}.{section}: batch keys must be non-empty strings without '.', "
                                    f"got {key!r}")
                if key in RESERVED_BATCH_KEYS:
                    raise SpecError(f"{where}.{section}.{key}: '{key}' is reserved (batch['target'] holds labels, "
                                    f"batch['present'] which examples have which input); name the input otherwise")
                path = f"{section}.{key}"
                refs.append(PartRef.parse(value, path=path, kind=kind, where=f"{where}.{path}"))
        return cls(tuple(refs))

    def to_dict(self) -> dict[str, Any]:
        """The schema form: ``{"encoders": {key: {"type": ..., ...}}, "fusion": {...}, "head": {...}}``."""
        out: dict[str, Any] = {}
        for kind in KINDS:
            section = SECTIONS[kind]
            if kind in KEYED_KINDS:
                out[section] = {ref.key: ref.to_dict() for ref in self.parts(kind)}
            else:
                out[section] = self.parts(kind)[0].to_dict()
        return out

    # ----- changing ----------------------------------------------------------------------------
    def merge(self, overrides: Mapping[str, Any], where: str = "overrides") -> Spec:
        """Apply ``encoders=``/``fusion=``/``head=`` overrides: parameters are merged into the part,
        a changed ``type`` replaces it, a new batch key adds an encoder, ``None`` changes nothing."""
        merged = self.to_dict()
        for section, value in overrides.items():
            if section not in SPEC_KEYS:
                raise SpecError(f"{where}: unknown override '{section}'; expected one of "
                                f"{', '.join(SPEC_KEYS)}.{did_you_mean(str(section), SPEC_KEYS)}")
            if value is None:
                continue
            kind = next(k for k in KINDS if SECTIONS[k] == section)
            if kind not in KEYED_KINDS:
                merged[section] = _merge_part(merged[section], value, f"{where}.{section}")
                continue
            if not isinstance(value, Mapping):
                raise SpecError(f"{where}.{section}: expected batch key -> part mapping, got {type_name(value)}")
            for key, change in value.items():
                merged[section][key] = _merge_part(merged[section].get(key), change, f"{where}.{section}.{key}")
        return Spec.from_dict(merged, where)

    def with_params(self, path: str, params: Mapping[str, Any]) -> Spec:
        """This spec with ``params`` set on the part at ``path`` (others kept)."""
        target = self.part(path)
        updated = PartRef(target.path, target.kind, target.name, {**target.params, **params})
        return Spec(tuple(updated if ref.path == path else ref for ref in self.part_refs))

    def changes_from(self, before: Spec) -> dict[str, str]:
        """Path -> what differs from ``before``, for each part whose type or parameters differ."""
        previous = {ref.path: ref.to_dict() for ref in before}
        changes = {}
        for ref in self:
            old, new = previous.get(ref.path, {}), ref.to_dict()
            if old != new:
                changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                           if old.get(k) != new.get(k)]
                changes[ref.path] = ", ".join(changed)
        return changes


def _merge_part(current: dict | None, change: Any, where: str) -> Any:
    if isinstance(change, str):
        change = {"type": change}
    if not isinstance(change, Mapping):
        raise SpecError(f"{where}: expected a mapping of parameters, got {type_name(change)}")
    if current is None or ("type" in change and change["type"] != current.get("type")):
        return copy.deepcopy(dict(change))
    return {**current, **copy.deepcopy(dict(change))}


# ----- registry entries ---------------------------------------------------------------------------
def parse_weights(data: Any, where: str) -> dict[str, dict]:
    """Normalise ``weights:`` to ``{tag: {"repo", "revision", "file", "sha256"}}``.

    Either one location (``{repo: ..., revision: ...}``, tag ``default``) or a mapping of tags to
    locations; the first tag is the default of ``create_model(name, pretrained=True)``.
    """
    if not isinstance(data, dict) or not data:
        raise SpecError(f"{where}: expected a mapping like {{repo: org/name, revision: <sha>}} "
                        f"or tag -> such a mapping, got {type_name(data)}")
    tagged = {"default": data} if "repo" in data else data
    out = {}
    for tag, ref in tagged.items():
        at = where if tagged is not data else f"{where}.{tag}"
        if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", tag):
            raise SpecError(f"{where}: weight tags must be words like 'in1k', got {tag!r}")
        if not isinstance(ref, dict):
            raise SpecError(f"{at}: expected a mapping with repo, revision, file, sha256, got {type_name(ref)}")
        check_keys(ref, WEIGHT_KEYS, at)
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
    """Check one ``models.<name>`` entry; returns the fields of a ``ModelEntry`` (``spec`` typed)."""
    spec = Spec.from_dict(data, where, allowed=ENTRY_KEYS)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{where}.description: expected a string, got {type_name(description)}")
    weights = parse_weights(data["weights"], f"{where}.weights") if data.get("weights") is not None else {}
    return {"spec": spec, "description": description, "weights": weights}
