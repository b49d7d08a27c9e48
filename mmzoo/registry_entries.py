"""What the registry holds: its entries (parts, families, models, problems, listing rows) and how a
lazily registered factory is loaded.

Plain frozen records; the lookups over them are :class:`mmzoo.registry.Registry`'s, which re-exports
every name here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmzoo.errors import PluginError, SpecError

if TYPE_CHECKING:
    from mmzoo.spec import Spec


def normalize_modalities(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    """``"image"``, ``"text|audio"`` (the older spelling) or ``["text", "audio"]`` -> a tuple of names."""
    if value is None:
        return ()
    items = value.split("|") if isinstance(value, str) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise SpecError(f"{what}: modality must be a string or a list of strings, got {value!r}")
    out = tuple(m.strip() if isinstance(m, str) else m for m in items)
    if not out or not all(isinstance(m, str) and m for m in out):
        raise SpecError(f"{what}: modality must name one or more modalities ('image', 'text', ...), "
                        f"got {value!r}")
    return tuple(dict.fromkeys(out))


def load_attribute(target: str | Callable, *, dist: str = "", what: str = "") -> Callable:
    """Resolve a lazy ``"module.path:Attribute"`` string (or return a callable unchanged)."""
    if not isinstance(target, str):
        return target
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except Exception as exc:  # any import-time failure of a plugin's module is the plugin's fault
        by = f" (registered by {dist})" if dist else ""
        raise PluginError(f"cannot load {what or target!r}{by}: {target!r} failed with "
                          f"{type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise PluginError(f"{target!r} for {what or 'a registered name'} is not callable")
    return obj


@dataclass(frozen=True)
class Component:
    """A registered part or dataset."""

    kind: str
    name: str
    dist: str
    factory: Callable | str
    modalities: tuple[str, ...] = ()  # encoders: what they read ("image", "text", ...)
    description: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.dist}:{self.name}"

    def load(self) -> Callable:
        """The factory, importing its module if it was registered lazily."""
        return load_attribute(self.factory, dist=self.dist, what=f"{self.kind} '{self.name}'")


@dataclass(frozen=True)
class Family:
    """A name prefix (``timm/``) whose members a single factory builds.

    ``modalities`` holds for every member unless ``modality_of(member, params)`` (a callable or lazy
    string) says better for one member: it returns a modality or a list of them, or None when it
    cannot tell.
    """

    kind: str
    prefix: str
    dist: str
    factory: Callable | str
    modalities: tuple[str, ...] = ()
    description: str = ""
    members: Callable | str | None = None
    modality_of: Callable | str | None = None
    is_member: Callable | str | None = None

    @property
    def name(self) -> str:
        return self.prefix + "*"

    def has_member(self, member: str) -> bool | None:
        """Whether ``prefix + member`` exists: the family's ``is_member`` says (None: it cannot tell
        here), else whether ``members`` lists it; None for a family that has neither."""
        if self.is_member is not None:
            check = load_attribute(self.is_member, dist=self.dist, what=f"is_member of {self.name}")
            found = check(member)
            return None if found is None else bool(found)
        if self.members is None:
            return None
        return self.prefix + member in self.member_names()

    def member_names(self) -> list[str]:
        """Full names of every member (may import the family's library)."""
        if self.members is None:
            return []
        lister = load_attribute(self.members, dist=self.dist, what=f"members of {self.name}")
        return sorted(self.prefix + str(m) for m in lister())


@dataclass(frozen=True)
class Resolved:
    """The outcome of a lookup: what to call to build ``name``."""

    kind: str
    name: str
    dist: str
    target: Component | Family
    member: str | None = None

    def modalities(self, params: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        """What this encoder reads. A family member asks the family's ``modality_of`` resolver (given
        the part's ``params`` from the spec, when known) and falls back to the family's modalities."""
        target = self.target
        if isinstance(target, Family) and target.modality_of is not None and self.member is not None:
            resolve = load_attribute(target.modality_of, dist=self.dist, what=f"modality_of of {target.name}")
            found = resolve(self.member, dict(params or {}))
            if found:
                return normalize_modalities(found, f"{target.name} modality_of({self.member!r})")
        return target.modalities

    def factory(self) -> Callable:
        """The callable that takes the part's parameters (family members bound in)."""
        fn = load_attribute(self.target.factory, dist=self.dist, what=f"{self.kind} '{self.name}'")
        if self.member is None:
            return fn
        member = self.member

        def build_member(*args: Any, **params: Any) -> Any:
            return fn(member, *args, **params)

        build_member.__wrapped__ = fn  # lets parameter checks see the factory's signature
        build_member.__mmzoo_family_member__ = True
        return build_member


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its normalised spec and where its weights are."""

    name: str
    spec: Spec
    dist: str
    description: str = ""
    weights: dict = field(default_factory=dict)  # tag -> {"repo", "revision", "file", "sha256"}
    source: str = ""

    @property
    def default_tag(self) -> str | None:
        return next(iter(self.weights), None)


@dataclass
class Problem:
    """Something a plugin registered that could not be used (shown by ``mmzoo plugins``).

    ``model`` names a model that was kept (and is listed) but cannot be built as registered, e.g.
    because it names a part no installed plugin provides; without it the entry was skipped.
    """

    dist: str
    where: str
    message: str
    model: str | None = None


@dataclass(frozen=True)
class Listed:
    """One row of a listing: a part, a dataset, a family member, or a family shown as ``prefix*``."""

    kind: str
    name: str  # the bare name (``prefix*`` for a family)
    shown: str  # the name to show: ``DIST:name`` when two distributions register ``name``
    dist: str
    modalities: tuple[str, ...]
    description: str
    family: bool  # a family shown whole, not one of its members
