"""Names to factories: the registry of parts, datasets, name families and models.

Plugins register through a :class:`Registrar` bound to their distribution, which stages every
addition and commits it only when all of the plugin's hooks succeeded, so a failing plugin leaves
nothing half-registered. Lookups resolve bare names, qualified ``DIST:name`` names and family
members (``timm/resnet18``), and explain every miss.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import (
    AmbiguousNameError,
    MissingPluginError,
    PluginError,
    SpecError,
    UnknownNameError,
    did_you_mean,
)

KINDS = ("encoder", "fusion", "head", "dataset")

# Families whose provider is known even when it is not installed, so a miss can say what to install.
KNOWN_PROVIDERS = {"timm/": "mmzoo-timm", "hf/": "mmzoo-transformers"}


def normalize_dist(name: str) -> str:
    """Canonical form of a distribution name (PEP 503): ``Mmzoo_Foo`` -> ``mmzoo-foo``."""
    return name.lower().replace("_", "-").replace(".", "-")


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
    modality: str | None = None
    description: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.dist}:{self.name}"

    def load(self) -> Callable:
        """The factory, importing its module if it was registered lazily."""
        return load_attribute(self.factory, dist=self.dist, what=f"{self.kind} '{self.name}'")


@dataclass(frozen=True)
class Family:
    """A name prefix (``timm/``) whose members a single factory builds."""

    kind: str
    prefix: str
    dist: str
    factory: Callable | str
    modality: str | None = None
    description: str = ""
    members: Callable | str | None = None

    @property
    def name(self) -> str:
        return self.prefix + "*"

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
    modality: str | None
    target: Component | Family
    member: str | None = None

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
    spec: dict
    dist: str
    description: str = ""
    weights: dict = field(default_factory=dict)  # tag -> {"repo", "revision", "file", "sha256"}
    source: str = ""

    @property
    def default_tag(self) -> str | None:
        return next(iter(self.weights), None)


@dataclass
class Problem:
    """Something a plugin registered that could not be used (shown by ``mmzoo plugins``)."""

    dist: str
    where: str
    message: str


class Registry:
    """Every registered part, dataset, family and model, by kind and name."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, list[Component]]] = {k: {} for k in KINDS}
        self.families: dict[str, list[Family]] = {k: [] for k in KINDS}
        self.models: dict[str, list[ModelEntry]] = {}
        self.problems: list[Problem] = []
        self.failed_dists: dict[str, str] = {}  # dist -> why it was skipped

    # ----- registration ---------------------------------------------------------------------
    def registrar(self, dist: str) -> Registrar:
        """A staging view for one distribution's hooks (see :class:`Registrar`)."""
        return Registrar(self, dist)

    def _commit(self, registrar: Registrar) -> None:
        for comp in registrar.staged_components:
            self.components[comp.kind].setdefault(comp.name, []).append(comp)
        for fam in registrar.staged_families:
            self.families[fam.kind].append(fam)
        for entry in registrar.staged_models:
            self.models.setdefault(entry.name, []).append(entry)
        self.problems.extend(registrar.problems)

    # ----- lookup -----------------------------------------------------------------------------
    def dists(self) -> set[str]:
        found = {c.dist for by_name in self.components.values() for cs in by_name.values() for c in cs}
        found |= {f.dist for fams in self.families.values() for f in fams}
        found |= {m.dist for ms in self.models.values() for m in ms}
        return found

    def _split_qualified(self, name: str) -> tuple[str | None, str]:
        dist, sep, bare = name.partition(":")
        if sep and dist and bare:
            return normalize_dist(dist), bare
        return None, name

    def resolve(self, kind: str, name: str, *, where: str = "") -> Resolved:
        """Find what builds ``name`` as a ``kind``; every miss raises a message saying why."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        at = f"{where}: " if where else ""
        if not isinstance(name, str) or not name:
            raise SpecError(f"{at}expected the name of a {kind}, got {name!r}")
        dist, bare = self._split_qualified(name)
        candidates = self.components[kind].get(bare, [])
        if dist is not None:
            candidates = [c for c in candidates if normalize_dist(c.dist) == dist]
        if len(candidates) == 1:
            c = candidates[0]
            return Resolved(kind, c.name, c.dist, c.modality, c)
        if len(candidates) > 1:
            choices = ", ".join(f"'{c.qualified_name}'" for c in candidates)
            raise AmbiguousNameError(f"{at}{kind} '{bare}' is registered by {len(candidates)} "
                                     f"distributions; name one of {choices}")
        family = self._family_for(kind, bare, dist)
        if family is not None:
            member = bare[len(family.prefix):]
            return Resolved(kind, bare, family.dist, family.modality, family, member=member)
        raise self._miss(kind, bare, dist, at)

    def _family_for(self, kind: str, name: str, dist: str | None) -> Family | None:
        matches = [f for f in self.families[kind] if name.startswith(f.prefix) and len(name) > len(f.prefix)]
        if dist is not None:
            matches = [f for f in matches if normalize_dist(f.dist) == dist]
        if not matches:
            return None
        longest = max(len(f.prefix) for f in matches)
        best = [f for f in matches if len(f.prefix) == longest]
        if len(best) > 1:
            choices = ", ".join(f"'{f.dist}:{name}'" for f in best)
            raise AmbiguousNameError(f"family '{best[0].prefix}*' is registered by several "
                                     f"distributions; name one of {choices}")
        return best[0]

    def _miss(self, kind: str, name: str, dist: str | None, at: str) -> Exception:
        if dist is not None and dist not in {normalize_dist(d) for d in self.dists()}:
            return MissingPluginError(f"{at}no installed distribution is called '{dist}' "
                                      f"(for {kind} '{dist}:{name}'); install it with: pip install {dist}")
        for prefix, provider in KNOWN_PROVIDERS.items():
            if name.startswith(prefix) and not any(f.prefix == prefix for f in self.families[kind]):
                return MissingPluginError(f"{at}{kind} '{name}' is provided by the '{provider}' "
                                          f"distribution, which is not installed; install it with: "
                                          f"pip install {provider}")
        others = [k for k in KINDS if k != kind and name in self.components[k]]
        if others:
            return UnknownNameError(f"{at}'{name}' is a {others[0]}, not a {kind}; "
                                    f"{kind}s are: {', '.join(self.names(kind)) or '(none)'}")
        hint = did_you_mean(name, self.names(kind))
        failed = ""
        if self.failed_dists:
            failed = (f" (plugins that failed to load: {', '.join(sorted(self.failed_dists))}; "
                      f"see 'mmzoo plugins')")
        return UnknownNameError(f"{at}unknown {kind} '{name}'.{hint}{failed} "
                                f"List {kind}s with: mmzoo list --kind {kind}")

    def component(self, kind: str, name: str) -> list[Component]:
        return list(self.components[kind].get(name, []))

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Sorted names of one kind; a family shows as ``prefix*`` unless ``pattern`` reaches into it."""
        found = {n for n in self.components[kind] if fnmatch.fnmatchcase(n, pattern)}
        for fam in self.families[kind]:
            members = []
            if reaches_into(pattern, fam.prefix):
                members = [n for n in fam.member_names() if fnmatch.fnmatchcase(n, pattern)]
                found.update(members)
            if not members and (fnmatch.fnmatchcase(fam.name, pattern) or fnmatch.fnmatchcase(fam.prefix, pattern)):
                found.add(fam.name)
        return sorted(found)

    def model_names(self, pattern: str = "*", *, pretrained: bool = False) -> list[str]:
        """Sorted model names; with ``pretrained`` only those with weights, as ``name.tag``."""
        out = []
        for name, entries in self.models.items():
            if pretrained:
                tags = {t for e in entries for t in e.weights}
                out.extend(n for n in (f"{name}.{t}" for t in tags) if fnmatch.fnmatchcase(n, pattern))
                if tags and fnmatch.fnmatchcase(name, pattern):
                    out.append(name)
            elif fnmatch.fnmatchcase(name, pattern):
                out.append(name)
        return sorted(set(out))

    def model(self, name: str) -> tuple[ModelEntry, str | None]:
        """The entry for ``name`` or ``name.tag`` (and the tag asked for, if any)."""
        dist, bare = self._split_qualified(name)
        tag = None
        entries = self._model_entries(bare, dist)
        if not entries and "." in bare:
            base, _, tag = bare.rpartition(".")
            entries = self._model_entries(base, dist)
            if entries and not any(tag in e.weights for e in entries):
                tags = sorted({t for e in entries for t in e.weights})
                listed = ", ".join(f"'{base}.{t}'" for t in tags) or "none"
                raise UnknownNameError(f"model '{base}' has no weights tagged '{tag}'; tagged "
                                       f"weights: {listed}.{did_you_mean(tag, tags)}")
        if len(entries) > 1:
            choices = ", ".join(f"'{e.dist}:{e.name}'" for e in entries)
            raise AmbiguousNameError(f"model '{bare}' is registered by several distributions; "
                                     f"name one of {choices}")
        if not entries:
            raise UnknownNameError(f"unknown model '{name}'.{did_you_mean(bare, self.models)} "
                                   f"List models with: mmzoo list --kind model")
        return entries[0], tag

    def _model_entries(self, name: str, dist: str | None) -> list[ModelEntry]:
        entries = self.models.get(name, [])
        if dist is not None:
            entries = [e for e in entries if normalize_dist(e.dist) == dist]
        return entries


def reaches_into(pattern: str, prefix: str) -> bool:
    """True when ``pattern``'s literal start extends into ``prefix`` (``timm/vit*`` into ``timm/``)."""
    literal = pattern
    for i, ch in enumerate(pattern):
        if ch in "*?[":
            literal = pattern[:i]
            break
    return literal.startswith(prefix)


class Registrar:
    """What a plugin's hooks receive: ``add_*`` methods that stage entries for one distribution."""

    def __init__(self, registry: Registry, dist: str) -> None:
        self._registry = registry
        self.dist = dist
        self.staged_components: list[Component] = []
        self.staged_families: list[Family] = []
        self.staged_models: list[ModelEntry] = []
        self.problems: list[Problem] = []

    # parts ------------------------------------------------------------------------------------
    def add_encoder(self, name: str, factory: Callable | str, *, modality: str, description: str = "") -> None:
        """Register an encoder for one ``modality`` ("image", "text", "audio", ...)."""
        if not isinstance(modality, str) or not modality:
            raise SpecError(f"add_encoder('{name}'): modality must be a non-empty string, got {modality!r}")
        self._add(Component("encoder", name, self.dist, factory, modality, description))

    def add_fusion(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a fusion operator; its factory takes ``input_dims`` and parameters."""
        self._add(Component("fusion", name, self.dist, factory, None, description))

    def add_head(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a head; its factory takes ``input_dim`` and parameters."""
        self._add(Component("head", name, self.dist, factory, None, description))

    def add_dataset(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a dataset; its factory takes ``split`` and parameters."""
        self._add(Component("dataset", name, self.dist, factory, None, description))

    def add_family(self, kind: str, prefix: str, factory: Callable | str, *, modality: str | None = None,
                   description: str = "", members: Callable | str | None = None) -> None:
        """Register every name starting with ``prefix``; ``factory(member, **params)`` builds one."""
        if kind not in KINDS:
            raise SpecError(f"add_family('{prefix}'): unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not isinstance(prefix, str) or not prefix or ":" in prefix:
            raise SpecError(f"add_family: prefix must be a non-empty string without ':', got {prefix!r}")
        if kind == "encoder" and not modality:
            raise SpecError(f"add_family('{prefix}'): an encoder family needs a modality")
        _check_factory(factory, f"add_family('{prefix}')")
        if members is not None:
            _check_factory(members, f"add_family('{prefix}', members=...)")
        if any(f.kind == kind and f.prefix == prefix for f in self.staged_families):
            raise SpecError(f"family '{prefix}*' is registered twice by {self.dist}")
        self.staged_families.append(Family(kind, prefix, self.dist, factory, modality, description, members))

    def _add(self, comp: Component) -> None:
        what = f"add_{comp.kind}({comp.name!r})"
        _check_name(comp.name, what)
        _check_factory(comp.factory, what)
        if any(c.kind == comp.kind and c.name == comp.name for c in self.staged_components):
            raise SpecError(f"{comp.kind} '{comp.name}' is registered twice by {self.dist}")
        self.staged_components.append(comp)

    # models -----------------------------------------------------------------------------------
    def add_model(self, name: str, spec: dict, *, where: str | None = None) -> None:
        """Register a named model; a malformed spec is reported and skipped, not raised."""
        from mmzoo.spec import parse_registry_entry

        where = where or f"models.{name}"
        try:
            _check_name(name, f"add_model({name!r})")
            if any(m.name == name for m in self.staged_models):
                raise SpecError(f"{where}: model '{name}' is registered twice by {self.dist}")
            entry = parse_registry_entry(name, spec, where=where)
        except SpecError as exc:
            self.problems.append(Problem(self.dist, where, str(exc)))
            return
        self.staged_models.append(ModelEntry(name=name, dist=self.dist, source=where, **entry))

    def add_models_from_yaml(self, path: str | Path) -> None:
        """Register every model of a ``registry.yaml``-style file (top-level ``models:``)."""
        from mmzoo.spec import read_yaml

        path = Path(path)
        try:
            data = read_yaml(path)
            if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
                got = type(data).__name__ if not isinstance(data, dict) else "no 'models' mapping"
                raise SpecError(f"{path}: expected a mapping with a top-level 'models:' mapping, got {got}")
            extra = sorted(set(data) - {"models"})
            if extra:
                raise SpecError(f"{path}: unknown top-level key(s) {', '.join(extra)}; only 'models' is allowed")
        except SpecError as exc:
            self.problems.append(Problem(self.dist, str(path), str(exc)))
            return
        for name, spec in data["models"].items():
            self.add_model(str(name), spec, where=f"{path.name}: models.{name}")


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name or ":" in name or any(ch.isspace() for ch in name):
        raise SpecError(f"{what}: a name must be a non-empty string without ':' or spaces, got {name!r}")


def _check_factory(factory: object, what: str) -> None:
    if isinstance(factory, str):
        module, sep, attr = factory.partition(":")
        if not (module and sep and attr):
            raise SpecError(f"{what}: a lazy factory must look like 'module.path:Attribute', got {factory!r}")
    elif not callable(factory):
        raise SpecError(f"{what}: factory must be callable or a 'module:Attribute' string, got {factory!r}")


def iter_components(registry: Registry, kinds: Iterable[str] = KINDS) -> Iterable[Component | Family]:
    """Every component and family of ``kinds``, for listings."""
    for kind in kinds:
        for comps in registry.components[kind].values():
            yield from comps
        yield from registry.families[kind]
