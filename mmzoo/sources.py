"""Where a model comes from: every source ``create_model`` accepts, classified and dispatched here.

- ``"hf-hub:org/repo"`` or ``"hf-hub:org/repo@rev"``: a model published on the Hub (``config.json``
  and weights, pinned by ``rev``);
- ``"local-dir:PATH"``: a directory written by ``save_pretrained`` (or a run's ``model/``);
- ``"name"``, ``"name.tag"``, ``"DIST:name"``: a registry model; with ``pretrained=True`` or a
  tag, its published weights;
- ``"PATH"``: a directory as with ``local-dir:``, or a ``.yaml``/``.yml`` spec file;
- a ``pathlib.Path``: a directory or a spec file, never a registry name;
- a mapping: a spec (``encoders``, ``fusion``, ``head``).

A bare string that is both an existing directory and a registry model is refused: the message names
both and the prefix that picks each. ``parse_source`` only classifies (cheap, no download);
``resolve_source`` turns a source into a ``ModelRecipe``: the spec to build and the weights file to
load, if any.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzoo.errors import MmzooError, SpecError, WeightsError

if TYPE_CHECKING:
    from mmzoo.registry import Registry
    from mmzoo.saved import SavedModel
    from mmzoo.spec import Spec

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
_PREFIXES = {HF_HUB_PREFIX: "hf-hub", LOCAL_DIR_PREFIX: "local-dir"}
_SPEC_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ModelSource:
    """What ``create_model`` was given, classified: ``kind`` (``hf-hub``, ``local-dir``, ``spec``,
    ``spec-file`` or ``registry``), the ``target`` (repo id with revision, path, registry name or
    spec mapping) and the ``label`` that messages use (what the caller wrote)."""

    kind: str
    target: Any
    label: str


@dataclass(frozen=True)
class ModelRecipe:
    """What to build for a source: ``spec`` (overrides applied), and, when there are weights, the
    ``weights`` file with the spec it was saved with (``saved_spec``), so overridden parts are known."""

    spec: Spec
    where: str  # how errors locate the spec ("models.foo", "my-dir: config.json spec")
    source: str  # how the load report names where the weights came from
    name: str | None = None
    weights: Path | None = None
    saved_spec: Spec | None = None
    requires: dict[str, str] = field(default_factory=dict)
    saved: SavedModel | None = None
    retyped: frozenset[str] = frozenset()  # parts whose type the caller's overrides give (not the config)


def parse_source(name_or_spec: Any, registry: Registry | None = None) -> ModelSource:
    """Classify ``name_or_spec`` without building or downloading anything (see the module's table).

    ``registry`` is consulted only for a bare string that names an existing directory, to refuse one
    that is also a registry model.
    """
    if isinstance(name_or_spec, Mapping):
        return ModelSource("spec", dict(name_or_spec), "spec")
    if isinstance(name_or_spec, os.PathLike):
        path = Path(name_or_spec).expanduser()
        label = os.fspath(name_or_spec)
        _refuse_unusable_path(path, label)
        return ModelSource("local-dir" if path.is_dir() else "spec-file", path, label)
    if not isinstance(name_or_spec, str):
        raise SpecError("create_model: expected a model name, 'hf-hub:org/repo', 'local-dir:PATH', a directory, "
                        f"a YAML file or a spec dict, got {type(name_or_spec).__name__}")
    for prefix, kind in _PREFIXES.items():
        if name_or_spec.startswith(prefix):
            target = name_or_spec[len(prefix):]
            if not target:
                raise SpecError(f"{name_or_spec!r}: nothing after '{prefix}'")
            if kind == "local-dir":
                _refuse_unusable_path(Path(target).expanduser(), name_or_spec)
            return ModelSource(kind, target if kind == "hf-hub" else Path(target).expanduser(), name_or_spec)
    path = Path(name_or_spec).expanduser()
    _refuse_unusable_path(path, name_or_spec, could_be_a_name=True)
    if path.is_dir():
        _refuse_ambiguous(name_or_spec, path, registry)
        return ModelSource("local-dir", path, name_or_spec)
    if path.suffix in _SPEC_FILE_SUFFIXES or path.is_file():
        return ModelSource("spec-file", path, name_or_spec)
    return ModelSource("registry", name_or_spec, name_or_spec)


def _refuse_unusable_path(path: Path, label: str, *, could_be_a_name: bool = False) -> None:
    """A SpecError for a path the system cannot even look at (too long, looping symbolic links)."""
    from mmzoo.localpaths import path_problem, shorten

    problem = path_problem(path)
    if problem is not None:
        what = "not a registry model name, and unusable as a path" if could_be_a_name else "unusable as a path"
        raise SpecError(f"{shorten(label)!r}: {what} ({problem}); give a registry name, 'hf-hub:org/repo', or the "
                        f"path of a model directory or spec file")


def _refuse_ambiguous(name: str, path: Path, registry: Registry | None) -> None:
    if registry is None:
        from mmzoo.plugins import get_registry

        registry = get_registry()
    if not registry.has_model(name):
        return
    try:
        qualified = f"'{registry.model(name)[0].dist}:{name}'"
    except MmzooError:  # registered by several distributions: each has its own qualified name
        qualified = "'DIST:" + name + "'"
    raise SpecError(f"'{name}' is both a directory ({path.resolve()}) and a registry model; say which: "
                    f"'{LOCAL_DIR_PREFIX}{name}' for the directory, {qualified} for the registry model")


def resolve_source(name_or_spec: Any, *, pretrained: bool = False, overrides: Mapping[str, Any] | None = None,
                   allow_pickle: bool = False, registry: Registry | None = None) -> ModelRecipe:
    """The :class:`ModelRecipe` for ``name_or_spec``: downloads a Hub model or registry weights when
    the source has them (verified, see :mod:`mmzoo.hub`), reads a directory's ``config.json``
    (:func:`mmzoo.saved.read_model_dir`), and applies ``overrides`` to the spec."""
    if registry is None:
        from mmzoo.plugins import get_registry

        registry = get_registry()
    source = parse_source(name_or_spec, registry)
    return _SOURCES[source.kind](source, pretrained, dict(overrides or {}), allow_pickle, registry)


def _from_spec(source: ModelSource, pretrained: bool, overrides: dict, allow_pickle: bool,
               registry: Registry) -> ModelRecipe:
    from mmzoo.spec import Spec

    spec = Spec.from_dict(source.target, "spec")
    if pretrained:
        raise MmzooError("pretrained=True needs a model that has weights (a registry name with weights, "
                         "a directory or 'hf-hub:org/repo'); a spec dict has none")
    return ModelRecipe(spec.merge(overrides), "spec", source.label)


def _from_spec_file(source: ModelSource, pretrained: bool, overrides: dict, allow_pickle: bool,
                    registry: Registry) -> ModelRecipe:
    from mmzoo.spec import SPEC_KEYS, Spec, read_yaml

    if pretrained:
        raise MmzooError(f"pretrained=True: {source.label} is a spec file without weights; use a registry name "
                         f"with weights, a directory or 'hf-hub:org/repo'")
    where = str(source.target)
    spec = Spec.from_dict(read_yaml(source.target, what="spec file"), where, allowed=(*SPEC_KEYS, "description"))
    return ModelRecipe(spec.merge(overrides), "spec", source.label)


def _from_registry(source: ModelSource, pretrained: bool, overrides: dict, allow_pickle: bool,
                   registry: Registry) -> ModelRecipe:
    entry, tag = registry.model(source.target)
    where = f"models.{entry.name}"
    spec = entry.spec.merge(overrides, where=f"{where} (overrides)")
    if not pretrained and tag is None:
        return ModelRecipe(spec, where, source.label, name=entry.name)
    if not entry.weights:
        have = ", ".join(registry.model_names(pretrained=True)) or "none yet"
        raise WeightsError(f"model '{entry.name}' has no published weights (no 'weights:' in its registry "
                           f"entry); build it with pretrained=False. Models with weights: {have}")
    from mmzoo.hub.download import download_registry_weights

    weights = download_registry_weights(entry.weights[tag or entry.default_tag], allow_pickle=allow_pickle)
    return ModelRecipe(spec, where, f"{source.label} ({weights})", name=entry.name, weights=weights,
                       saved_spec=entry.spec)


def _from_dir(source: ModelSource, pretrained: bool, overrides: dict, allow_pickle: bool,
              registry: Registry) -> ModelRecipe:
    from mmzoo.saved import read_model_dir

    label = source.label
    if not Path(source.target).is_dir():
        raise SpecError(f"{label}: no such directory; '{LOCAL_DIR_PREFIX}' needs a directory written by "
                        f"save_pretrained")
    saved = read_model_dir(source.target, source=label)
    return ModelRecipe(saved.spec.merge(overrides, where=f"{label} (overrides)"), f"{label}: config.json spec",
                       label, name=saved.name, weights=saved.weights_to_load(allow_pickle=allow_pickle, source=label),
                       saved_spec=saved.spec, requires=saved.requires, saved=saved, retyped=_retyped(overrides))


def _retyped(overrides: Mapping[str, Any]) -> frozenset[str]:
    """The part paths whose ``type`` the caller's overrides name: those parts come from the caller's code,
    not from the loaded config (so they may name local files, e.g. ``hf/<folder>``)."""
    def names_type(change: Any) -> bool:
        return isinstance(change, str) or (isinstance(change, Mapping) and "type" in change)

    paths = set()
    for section, value in overrides.items():
        if section == "encoders" and isinstance(value, Mapping):
            paths.update(f"encoders.{key}" for key, change in value.items() if names_type(change))
        elif section in ("fusion", "head") and names_type(value):
            paths.add(section)
    return frozenset(paths)


def _from_hub(source: ModelSource, pretrained: bool, overrides: dict, allow_pickle: bool,
              registry: Registry) -> ModelRecipe:
    from mmzoo.hub.download import download_model_dir, parse_hub_id

    repo_id, revision = parse_hub_id(source.label)
    directory = download_model_dir(repo_id, revision, allow_pickle=allow_pickle)
    return _from_dir(ModelSource("local-dir", directory, source.label), pretrained, overrides, allow_pickle,
                     registry)


_SOURCES: dict[str, Callable[..., ModelRecipe]] = {
    "hf-hub": _from_hub,
    "local-dir": _from_dir,
    "spec": _from_spec,
    "spec-file": _from_spec_file,
    "registry": _from_registry,
}
