"""Names to factories: the registry of parts, datasets, name families and models.

Plugins register through a :class:`~mmzoo.registrar.Registrar` bound to their distribution, which stages every
addition and commits it only when all of the plugin's hooks succeeded, so a failing plugin leaves
nothing half-registered. Lookups resolve bare names, qualified ``DIST:name`` names and family
members (``timm/resnet18``), and explain every miss.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mmzoo.errors import (
    AmbiguousNameError,
    MissingPluginError,
    SpecError,
    UnknownNameError,
    did_you_mean,
)
from mmzoo.registry_entries import (
    Component,
    Family,
    Listed,
    ModelEntry,
    Problem,
    Resolved,
    load_attribute,
    normalize_modalities,
)
from mmzoo.spec import KINDS as PART_KINDS

if TYPE_CHECKING:
    from mmzoo.registrar import Registrar
    from mmzoo.spec import PartRef

__all__ = [
    "COMPONENT_KINDS", "KNOWN_PROVIDERS", "LOGGER_KIND", "REGISTERED_KINDS", "Component", "Family", "Listed",
    "ModelEntry", "Problem", "Registry", "Resolved", "iter_components", "load_attribute", "normalize_dist",
    "normalize_modalities", "reaches_into",
]

#: What the registry holds by name: the part kinds of a spec, and datasets.
COMPONENT_KINDS = (*PART_KINDS, "dataset")
#: Experiment loggers (``log_to:`` in a run config), registered by ``mmzoo_register_loggers``.
LOGGER_KIND = "logger"
#: Every kind a name can be registered as.
REGISTERED_KINDS = (*COMPONENT_KINDS, LOGGER_KIND)

# Families whose provider is known even when it is not installed, so a miss can say what to install.
KNOWN_PROVIDERS = {"timm/": "mmzoo-timm", "hf/": "mmzoo-transformers"}


def normalize_dist(name: str) -> str:
    """Canonical form of a distribution name (PEP 503): ``Mmzoo_Foo`` -> ``mmzoo-foo``."""
    return name.lower().replace("_", "-").replace(".", "-")


class Registry:
    """Every registered part, dataset, family and model, by kind and name.

    Plugins add to it through a :class:`~mmzoo.registrar.Registrar` (see :meth:`registrar` and :meth:`commit`); the
    plugin loader records a distribution that failed with :meth:`mark_failed`.
    """

    def __init__(self) -> None:
        self.components: dict[str, dict[str, list[Component]]] = {k: {} for k in REGISTERED_KINDS}
        self.families: dict[str, list[Family]] = {k: [] for k in REGISTERED_KINDS}
        self.models: dict[str, list[ModelEntry]] = {}
        self.problems: list[Problem] = []
        self._failed: dict[str, str] = {}  # dist -> why it was skipped
        self._disabled: set[str] = set()  # dists left out by MMZOO_PLUGINS (normalised names)

    # ----- registration ---------------------------------------------------------------------
    def registrar(self, dist: str) -> Registrar:
        """A staging view for one distribution's hooks (see :class:`~mmzoo.registrar.Registrar`)."""
        from mmzoo.registrar import Registrar

        return Registrar(dist)

    def commit(self, registrar: Registrar) -> None:
        """Add everything ``registrar`` staged (call it once all of the distribution's hooks succeeded)."""
        for comp in registrar.staged_components:
            self.components[comp.kind].setdefault(comp.name, []).append(comp)
        for fam in registrar.staged_families:
            self.families[fam.kind].append(fam)
        for entry in registrar.staged_models:
            self.models.setdefault(entry.name, []).append(entry)
        self.problems.extend(registrar.problems)

    def check_models(self) -> list[Problem]:
        """Resolve every part each registered model names (call it once every plugin is committed, since
        a model may name another distribution's part); a model whose part cannot be resolved stays
        registered and gets a :class:`Problem` naming it. Returns the new problems."""
        from mmzoo.errors import MmzooError

        found = []
        for name, entries in self.models.items():
            for entry in entries:
                for part in entry.spec.parts():
                    try:
                        self.resolve_part(part, where=entry.source or f"models.{name}")
                    except MmzooError as exc:
                        found.append(Problem(entry.dist, entry.source, str(exc), model=name))
                        break
        self.problems.extend(found)
        return found

    def model_problems(self, name: str, dist: str | None = None) -> list[str]:
        """Why the registered model ``name`` (of ``dist``, when given) cannot be built; empty when it can."""
        return [p.message for p in self.problems if p.model == name and (dist is None or p.dist == dist)]

    def mark_failed(self, dist: str, reason: str) -> None:
        """Record that ``dist``'s plugin was skipped and why (misses and advice mention it)."""
        self._failed[dist] = reason

    def mark_disabled(self, dist: str) -> None:
        """Record that ``dist`` is installed but left out (``MMZOO_PLUGINS``), so misses say so."""
        self._disabled.add(normalize_dist(dist))

    @property
    def failed_dists(self) -> dict[str, str]:
        """Distribution -> why its plugin was skipped (a copy)."""
        return dict(self._failed)

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
        if kind not in REGISTERED_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(REGISTERED_KINDS)}")
        at = f"{where}: " if where else ""
        if not isinstance(name, str) or not name:
            raise SpecError(f"{at}expected the name of a {kind}, got {name!r}")
        dist, bare = self._split_qualified(name)
        candidates = self.components[kind].get(bare, [])
        if dist is not None:
            candidates = [c for c in candidates if normalize_dist(c.dist) == dist]
        if len(candidates) == 1:
            c = candidates[0]
            return Resolved(kind, c.name, c.dist, c)
        if len(candidates) > 1:
            choices = ", ".join(f"'{c.qualified_name}'" for c in candidates)
            raise AmbiguousNameError(f"{at}{kind} '{bare}' is registered by {len(candidates)} "
                                     f"distributions; name one of {choices}")
        family = self._family_for(kind, bare, dist)
        if family is not None:
            member = bare[len(family.prefix):]
            return Resolved(kind, bare, family.dist, family, member=member)
        raise self._miss(kind, bare, dist, at)

    def resolve_part(self, part: PartRef, *, where: str = "spec",
                     requires: Mapping[str, str] | None = None) -> Resolved:
        """Resolve a spec's part; when nothing provides it and ``requires`` (a saved model's
        distribution -> version) explains why, the error says which distribution to install."""
        try:
            return self.resolve(part.kind, part.name, where=f"{where}.{part.path}.type")
        except UnknownNameError as exc:
            advice = self.requirement_advice(requires or {})
            if not advice:
                raise
            raise MissingPluginError(f"{exc}. {advice}") from None

    def requirement_advice(self, requires: Mapping[str, str]) -> str:
        """What to do about a saved model's ``requires`` that this installation does not meet
        (missing distributions, plugins that failed to load, other versions); "" when all are met.

        ``requires`` comes from a saved model, so it is checked first (:func:`mmzoo.saved.check_requires`):
        the advice quotes only validated distribution names and versions; anything else is a SpecError.
        """
        from importlib import metadata

        from mmzoo.saved import UNKNOWN_VERSION, check_requires

        requires = check_requires(requires)
        failed = {normalize_dist(d) for d in self._failed}
        missing, broken, other_version = [], [], []
        for dist, version in requires.items():
            try:
                installed = metadata.version(dist)
            except (metadata.PackageNotFoundError, ValueError):
                missing.append((dist, version))
                continue
            if normalize_dist(dist) in failed:
                broken.append(dist)
            elif version not in (installed, UNKNOWN_VERSION):
                other_version.append((dist, version, installed))
        if missing:
            pins = " ".join(f"'{d}=={v}'" if v != UNKNOWN_VERSION else d for d, v in missing)
            listed = ", ".join(f"{d} {v}" for d, v in missing)
            return (f"The model's config.json needs distribution(s) that are not installed: {listed}; "
                    f"install with: pip install {pins}")
        if broken:
            return f"Installed plugin(s) {', '.join(broken)} failed to load; see 'mmzoo plugins'"
        if other_version:
            listed = ", ".join(f"{d}=={v} (installed: {i})" for d, v, i in other_version)
            return f"The model was saved with {listed}; install those versions"
        return ""

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
                if provider in self._disabled:
                    return MissingPluginError(f"{at}{kind} '{name}' is provided by the '{provider}' "
                                              f"distribution, which MMZOO_PLUGINS leaves out; add it there")
                return MissingPluginError(f"{at}{kind} '{name}' is provided by the '{provider}' "
                                          f"distribution, which is not installed; install it with: "
                                          f"pip install {provider}")
        others = [k for k in COMPONENT_KINDS if k != kind and name in self.components[k]]
        if others:
            return UnknownNameError(f"{at}'{name}' is a {others[0]}, not a {kind}; "
                                    f"{kind}s are: {', '.join(self.names(kind)) or '(none)'}")
        hint = did_you_mean(name, self.names(kind))
        failed = ""
        if self._failed:
            failed = (f" (plugins that failed to load: {', '.join(sorted(self._failed))}; "
                      f"see 'mmzoo plugins')")
        if self._disabled:
            failed += f" (installed plugins that MMZOO_PLUGINS leaves out: {', '.join(sorted(self._disabled))})"
        return UnknownNameError(f"{at}unknown {kind} '{name}'.{hint}{failed} "
                                f"List {kind}s with: mmzoo list --kind {kind}")

    # ----- listing ----------------------------------------------------------------------------
    def listing(self, kind: str, pattern: str = "*") -> list[Listed]:
        """Every part (or dataset) of ``kind`` whose name matches ``pattern`` (fnmatch), sorted.

        A family shows as one ``prefix*`` row unless ``pattern`` reaches into it (``timm/vit*``):
        then its members are listed (which may import the family's library); a family with no
        matching member there is still shown whole.
        """
        rows = []
        for name, comps in self.components[kind].items():
            if fnmatch.fnmatchcase(name, pattern):
                rows += [Listed(kind, name, c.qualified_name if len(comps) > 1 else name, c.dist, c.modalities,
                                c.description, False) for c in comps]
        for fam in self.families[kind]:
            members = []
            if reaches_into(pattern, fam.prefix):
                members = [n for n in fam.member_names() if fnmatch.fnmatchcase(n, pattern)]
                rows += [Listed(kind, n, n, fam.dist, fam.modalities, "", False) for n in members]
            if not members and (fnmatch.fnmatchcase(fam.name, pattern) or fnmatch.fnmatchcase(fam.prefix, pattern)):
                rows.append(Listed(kind, fam.name, fam.name, fam.dist, fam.modalities, fam.description, True))
        return sorted(rows, key=lambda r: r.shown)

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Sorted names of one kind; a family shows as ``prefix*`` unless ``pattern`` reaches into it."""
        return sorted({row.name for row in self.listing(kind, pattern)})

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

    def has_model(self, name: str) -> bool:
        """True when ``name`` (``name``, ``name.tag`` or ``DIST:name``) is a registered model, even
        an ambiguous one."""
        try:
            self.model(name)
        except AmbiguousNameError:
            return True
        except UnknownNameError:
            return False
        return True

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


def iter_components(registry: Registry, kinds: Iterable[str] = COMPONENT_KINDS) -> Iterable[Component | Family]:
    """Every component and family of ``kinds``, for listings."""
    for kind in kinds:
        for comps in registry.components[kind].values():
            yield from comps
        yield from registry.families[kind]
