"""Building models (and datasets) from names, specs, directories and the Hub.

``create_model`` asks :mod:`mmzoo.sources` what the user named (a spec to build, and weights to
load when there are any), resolves each part through the registry, checks parameters and
dimensions before anything runs, composes a :class:`~mmzoo.model.MultimodalModel`, and loads the
weights (:mod:`mmzoo.weights`), part by part.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mmzoo.errors import BuildError, DatasetError, MmzooError, SpecError, UnknownNameError
from mmzoo.params import check_params
from mmzoo.registry import Registry, Resolved
from mmzoo.spec import PartRef, Spec

if TYPE_CHECKING:
    from mmzoo.sources import ModelRecipe


def create_model(name_or_spec: str | os.PathLike | Mapping, pretrained: bool = False, *,
                 strict: bool = True, relaxed: Collection[str] = (), allow_pickle: bool = False,
                 device: Any = None, **overrides: Any):
    """Build a model from a registry name (``name.tag`` picks tagged weights), ``"hf-hub:org/repo[@revision]"``,
    ``"local-dir:PATH"`` or a directory written by ``save_pretrained``, a YAML spec file, or a spec dict
    (see :mod:`mmzoo.sources`).

    ``pretrained`` loads a registry model's published weights; directories and Hub repos always load
    theirs. ``overrides`` change parts' parameters (``head={"num_classes": 5}``); a part changed that
    way may be re-initialised instead of loaded, and ``model.load_report`` says so. ``strict=False`` or
    ``relaxed=["head"]`` accept parts that the weights do not fit. ``allow_pickle`` opts in to pickle
    checkpoints (never by default).

    ``device`` (a ``torch.device`` or its name) is where the model's tensors end up. ``"meta"`` builds
    a skeleton: every parameter and buffer has its shape and dtype but no storage, nothing is
    initialised and no weights are read (``model.load_report`` is None; parts are built as for loading
    weights, so none fetches its own). A skeleton is what sharding a large model starts from (the
    trainer's ``strategy: fsdp``): shard it, materialise each shard with ``Module.to_empty``, then fill
    the values.
    """
    from mmzoo.plugins import get_registry
    from mmzoo.sources import resolve_source

    registry = get_registry()
    recipe = resolve_source(name_or_spec, pretrained=pretrained, overrides=overrides, allow_pickle=allow_pickle,
                            registry=registry)
    target = _device(device)
    if target is not None and target.type == "meta":
        return _build_skeleton(recipe, registry=registry)
    if recipe.weights is None:
        model = build_model(recipe.spec, name=recipe.name, registry=registry, where=recipe.where)
    else:
        model = _build_and_load(recipe, registry=registry, strict=strict, relaxed=relaxed, allow_pickle=allow_pickle)
    return model if target is None else model.to(target)


def _device(device: Any):
    if device is None:
        return None
    import torch

    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise MmzooError(f"create_model: device {device!r} is not a torch device; give e.g. 'cpu', 'cuda:0' "
                         "or 'meta'") from None


def _build_skeleton(recipe: ModelRecipe, *, registry: Registry):
    """The model ``recipe`` describes with every tensor on the meta device (labels and provenance kept,
    weights not read)."""
    import torch

    from mmzoo.saved import check_labels, head_size

    try:
        with torch.device("meta"):
            model = build_model(recipe.spec, name=recipe.name, registry=registry, where=recipe.where,
                                for_weights=True, requires=recipe.requires, **_loaded(recipe))
    except BuildError as exc:
        raise BuildError(f"{exc} (building on the meta device, where tensors have shapes but no values: a part "
                         "must not read a tensor's value, e.g. with .item(), while it is built)") from None
    model.to("meta")  # what a part made outside torch's device context (legacy torch.Tensor(...)) too
    saved = recipe.saved
    if saved is not None:
        model.provenance = saved.provenance
        changes = recipe.spec.changes_from(recipe.saved_spec) if recipe.saved_spec is not None else {}
        if saved.labels is not None and recipe.spec.head.path not in changes:
            model.labels = check_labels(saved.labels, f"{saved.source}: config.json labels", size=head_size(model.head))
    return model


def _loaded(recipe: ModelRecipe) -> dict[str, Any]:
    """``build_model``'s arguments that say which parameters came from a loaded config.json."""
    if recipe.saved is None:
        return {}
    return {"loaded": recipe.saved.spec, "retyped": recipe.retyped}


def _build_and_load(recipe: ModelRecipe, *, registry: Registry, strict: bool, relaxed: Collection[str],
                    allow_pickle: bool):
    from mmzoo.saved import check_labels, head_size
    from mmzoo.weights import load_weights, skip_init

    spec, where = recipe.spec, recipe.where
    changes = spec.changes_from(recipe.saved_spec) if recipe.saved_spec is not None else {}
    reasons = {path: f"changed by override ({change})" for path, change in changes.items()}
    build = {"name": recipe.name, "registry": registry, "where": where, "for_weights": True,
             "requires": recipe.requires, **_loaded(recipe)}
    try:
        with skip_init():
            model = build_model(spec, **build)
    except (SpecError, UnknownNameError):
        raise
    except Exception:  # a part that cannot be built with parameters on meta: build it normally
        model = build_model(spec, **build)

    def materialize(path: str):
        return build_part(model.typed_spec.part(path), model.part_modules(), registry=registry, where=where)

    model.load_report = load_weights(model, recipe.weights, strict=strict, relaxed=set(relaxed) | set(reasons),
                                     reasons=reasons, materialize=materialize, allow_pickle=allow_pickle)
    model.load_report.source = recipe.source
    saved = recipe.saved
    if saved is not None:
        model.provenance = saved.provenance
        if saved.labels is not None and spec.head.path not in reasons:  # a changed head has other classes
            model.labels = check_labels(saved.labels, f"{saved.source}: config.json labels",
                                        size=head_size(model.head))
    return model


# ----- composition ------------------------------------------------------------------------------
def build_model(spec: Spec | Mapping, *, name: str | None = None, registry: Registry | None = None,
                where: str = "spec", for_weights: bool = False, requires: Mapping[str, str] | None = None,
                loaded: Spec | None = None, retyped: Collection[str] = ()):
    """Compose a model from a spec (a :class:`~mmzoo.spec.Spec` or its dict form), part by part in
    build order; ``requires`` (a saved model's distributions) explains parts no plugin provides.

    ``loaded``: the spec as a model directory's or the Hub's ``config.json`` gave it (``spec`` may differ by
    the caller's overrides). Its parameters that parts declare as local paths must not name local files
    (:mod:`mmzoo.localpaths`): a SpecError says which. ``retyped``: the part paths whose ``type`` the
    caller's overrides gave; those parts are the caller's own, not the config's.
    """
    from mmzoo.model import MultimodalModel
    from mmzoo.plugins import get_registry

    registry = registry or get_registry()
    spec = Spec.from_dict(spec, where)
    built: dict[str, Any] = {}
    used: dict[str, str] = {}
    for ref in spec.parts():
        resolved = registry.resolve_part(ref, where=where, requires=requires)
        part = _call(resolved, ref, _leading(ref.kind, built), f"{where}.{ref.path}", for_weights,
                     loaded=None if ref.path in retyped else _same_part(loaded, ref))
        _check_part(ref, part, built, spec, where)
        _bind_input_keys(ref, part, built, where)
        built[ref.path] = part
        spec = _pin(spec, ref, part)
        used[resolved.dist] = _version(resolved.dist)
    encoders = {ref.key: built[ref.path] for ref in spec.parts("encoder")}
    return MultimodalModel(encoders, built[spec.fusion.path], built[spec.head.path], spec=spec, name=name,
                           requires=dict(sorted(used.items())))


def build_part(ref: PartRef, built: Mapping[str, Any], *, registry: Registry, where: str = "spec"):
    """A freshly initialised part for ``ref``, given the parts ``built`` before it (by path), e.g.
    to replace a part that a weights file cannot fill."""
    resolved = registry.resolve_part(ref, where=where)
    part = _call(resolved, ref, _leading(ref.kind, built), f"{where}.{ref.path}", True)
    _bind_input_keys(ref, part, built, where)
    return part


def _leading(kind: str, built: Mapping[str, Any]) -> tuple:
    """The arguments the builder passes before a part's own parameters: a fusion gets its encoders'
    widths by batch key, a head the fusion's width."""
    if kind == "fusion":
        return ({path.split(".", 1)[1]: part.output_dim for path, part in built.items()
                 if path.startswith("encoders.")},)
    if kind == "head":
        return (built["fusion"].output_dim,)
    return ()


def _check_part(ref: PartRef, part: Any, built: Mapping[str, Any], spec: Spec, where: str) -> None:
    """What a part must satisfy once built, given the parts built before it."""
    if ref.kind in ("encoder", "fusion"):
        _check_dim(part, f"{where}.{ref.path} ({ref.name})")
    if ref.kind == "fusion":
        _check_tokens(part, {p: m for p, m in built.items() if p.startswith("encoders.")}, spec, where)
    if ref.kind == "head":
        _check_fusion_head(built["fusion"], part, spec, where)


def _bind_input_keys(ref: PartRef, part: Any, built: Mapping[str, Any], where: str) -> None:
    """Tell a head that asks (optional ``bind_input_keys``) the encoders' batch keys, in the order of the
    fusion's ``input_dims``, so it fixes what depends on them (e.g. metric names) at build time."""
    bind = getattr(part, "bind_input_keys", None)
    if ref.kind != "head" or not callable(bind):
        return
    keys = tuple(path.split(".", 1)[1] for path in built if path.startswith("encoders."))
    try:
        bind(keys)
    except MmzooError as exc:
        named = f"'{ref.name}'" in str(exc)
        raise type(exc)(f"{where}.{ref.path}: {exc}" if named else f"{where}.{ref.path} ({ref.name}): {exc}") from None


def _pin(spec: Spec, ref: PartRef, part: Any) -> Spec:
    """Record what a part resolved (e.g. the commit of a Hub revision) so a saved spec rebuilds it exactly."""
    resolved = getattr(part, "resolved_params", None)
    return spec.with_params(ref.path, resolved) if isinstance(resolved, Mapping) and resolved else spec


def _same_part(spec: Spec | None, ref: PartRef) -> PartRef | None:
    """``spec``'s part at ``ref``'s path when it is the same registered part (an override may replace it)."""
    if spec is None or ref.path not in spec.paths():
        return None
    other = spec.part(ref.path)
    return other if other.name == ref.name else None


def _call(resolved: Resolved, ref: PartRef, leading: tuple, where: str, for_weights: bool,
          loaded: PartRef | None = None):
    factory = resolved.factory()
    params = dict(ref.params)
    if loaded is not None:
        from mmzoo.localpaths import check_loaded_paths

        check_loaded_paths(ref.name, params, loaded.params, resolved.member, factory, where)
    check_params(factory, params, where, leading=len(leading))
    if for_weights and _accepts(factory, "pretrained"):
        params["pretrained"] = False  # the model's own weights overwrite whatever a part would fetch
    try:
        return factory(*leading, **params)
    except MmzooError as exc:
        named = f"'{ref.name}'" in str(exc)  # the part's own message already names it
        raise type(exc)(f"{where}: {exc}" if named else f"{where} ({ref.name}): {exc}") from None
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise BuildError(f"{where} ({ref.name}): cannot build it: {type(exc).__name__}: {exc}") from exc


def _accepts(factory: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(getattr(factory, "__wrapped__", factory)).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _check_dim(part: Any, what: str) -> None:
    dim = getattr(part, "output_dim", None)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise BuildError(f"{what}: output_dim must be a positive int, got {dim!r}; every encoder and fusion "
                         f"must say how wide its output is")


def _check_tokens(fusion: Any, encoders: Mapping[str, Any], spec: Spec, where: str) -> None:
    if not getattr(fusion, "requires_tokens", False):
        return
    pooled_only = [path for path, e in encoders.items() if getattr(e, "provides_tokens", None) is False]
    if pooled_only:
        names = ", ".join(f"{spec.part(p).key} ({spec.part(p).name})" for p in pooled_only)
        raise BuildError(f"{where}.fusion ({spec.fusion.name}) works on token sequences, but encoder(s) "
                         f"{names} give only pooled features; use encoders with token outputs or a pooled "
                         f"fusion such as concat or gated")


def _check_fusion_head(fusion: Any, head: Any, spec: Spec, where: str) -> None:
    gives = getattr(fusion, "output_kind", "tensor")
    takes = getattr(head, "input_kind", "tensor")
    if gives != takes:
        f, h = spec.fusion.name, spec.head.name
        if gives == "dict":
            hint = "a head that takes per-modality features (contrastive), or a fusion that merges (concat, gated)"
        else:
            hint = "a fusion that keeps modalities apart (project)"
        raise BuildError(f"{where}: fusion '{f}' gives {'one tensor per modality' if gives == 'dict' else 'one tensor'}"
                         f" but head '{h}' takes {'one per modality' if takes == 'dict' else 'one tensor'}; "
                         f"use {hint}")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def create_dataset(name: str, split: str = "train", **params: Any):
    """Build a registered dataset: ``factory(split=split, **params)``; items are example dicts.

    An unknown, missing or mistyped parameter is a :class:`~mmzoo.errors.SpecError` (as it is when a
    factory made with :func:`mmzoo.data.base.dataset_factory` is called directly); data that cannot be
    built or read is a :class:`~mmzoo.errors.DatasetError`.
    """
    from mmzoo.plugins import get_registry

    resolved = get_registry().resolve("dataset", name, where=f"dataset '{name}'")
    factory = resolved.factory()
    check_params(factory, {"split": split, **params}, f"dataset '{name}'")
    try:
        return factory(split=split, **params)
    except MmzooError:
        raise
    except (TypeError, ValueError, OSError) as exc:
        raise DatasetError(f"dataset '{name}' (split {split!r}): {type(exc).__name__}: {exc}") from exc
