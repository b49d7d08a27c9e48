"""What a plugin's hooks receive: a :class:`Registrar` that stages one distribution's additions.

Nothing a hook adds is visible until every hook of its distribution succeeded; then the plugin
loader commits it with :meth:`mmzoo.registry.Registry.commit`. A failing plugin leaves nothing
half-registered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from mmzoo.errors import SpecError
from mmzoo.registry import (
    COMPONENT_KINDS,
    LOGGER_KIND,
    Component,
    Family,
    ModelEntry,
    Problem,
    normalize_modalities,
)


class Registrar:
    """What a plugin's hooks receive: ``add_*`` methods that stage entries for one distribution."""

    def __init__(self, dist: str) -> None:
        self.dist = dist
        self.staged_components: list[Component] = []
        self.staged_families: list[Family] = []
        self.staged_models: list[ModelEntry] = []
        self.problems: list[Problem] = []

    # parts ------------------------------------------------------------------------------------
    def add_encoder(self, name: str, factory: Callable | str, *, modality: str | Sequence[str],
                    description: str = "") -> None:
        """Register an encoder of ``modality`` ("image", "text", "audio", ...; a list for several)."""
        modalities = normalize_modalities(modality, f"add_encoder('{name}')")
        if not modalities:
            raise SpecError(f"add_encoder('{name}'): modality must be a non-empty string, got {modality!r}")
        self._add(Component("encoder", name, self.dist, factory, modalities, description))

    def add_fusion(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a fusion operator; its factory takes ``input_dims`` and parameters."""
        self._add(Component("fusion", name, self.dist, factory, (), description))

    def add_head(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a head; its factory takes ``input_dim`` and parameters."""
        self._add(Component("head", name, self.dist, factory, (), description))

    def add_dataset(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register a dataset; its factory takes ``split`` and parameters."""
        self._add(Component("dataset", name, self.dist, factory, (), description))

    def add_logger(self, name: str, factory: Callable | str, *, description: str = "") -> None:
        """Register an experiment logger that ``log_to:`` in a run config names; ``factory(**params)``
        returns an object with ``log(record)`` and optionally ``start(run)`` and ``close()`` (see
        :mod:`mmzoo.loggers`)."""
        self._add(Component(LOGGER_KIND, name, self.dist, factory, (), description))

    def add_family(self, kind: str, prefix: str, factory: Callable | str, *,
                   modality: str | Sequence[str] | None = None, description: str = "",
                   members: Callable | str | None = None, modality_of: Callable | str | None = None,
                   is_member: Callable | str | None = None) -> None:
        """Register every name starting with ``prefix``; ``factory(member, **params)`` builds one.

        ``members`` lists the members on demand. For an encoder family, ``modality`` is what its
        members read (a list when they differ); ``modality_of(member, params)``, optional, tells one
        member's modality (or a list, or None when it cannot tell), for model cards and ``mmzoo info``.
        ``is_member(member)``, optional, tells whether a member exists (True/False, or None when it
        cannot tell here, e.g. offline) when ``members`` cannot list them all. Each may be a lazy
        ``"module:attribute"`` string.
        """
        if kind not in COMPONENT_KINDS:
            raise SpecError(f"add_family('{prefix}'): unknown kind {kind!r}; expected one of "
                            f"{', '.join(COMPONENT_KINDS)}")
        if not isinstance(prefix, str) or not prefix or ":" in prefix:
            raise SpecError(f"add_family: prefix must be a non-empty string without ':', got {prefix!r}")
        modalities = normalize_modalities(modality, f"add_family('{prefix}')")
        if kind == "encoder" and not modalities:
            raise SpecError(f"add_family('{prefix}'): an encoder family needs a modality")
        _check_factory(factory, f"add_family('{prefix}')")
        for what, value in (("members", members), ("modality_of", modality_of), ("is_member", is_member)):
            if value is not None:
                _check_factory(value, f"add_family('{prefix}', {what}=...)")
        if any(f.kind == kind and f.prefix == prefix for f in self.staged_families):
            raise SpecError(f"family '{prefix}*' is registered twice by {self.dist}")
        self.staged_families.append(Family(kind, prefix, self.dist, factory, modalities, description, members,
                                           modality_of, is_member))

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
