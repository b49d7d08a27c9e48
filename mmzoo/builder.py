"""Building models (and datasets) from names, specs, directories and the Hub.

``create_model`` turns whatever the user names into a spec, resolves each part through the
registry, checks parameters and dimensions before anything runs, composes a
:class:`~mmzoo.model.MultimodalModel`, and loads weights when there are any. Hub I/O lives in
:mod:`mmzoo.hub`; weight files in :mod:`mmzoo.weights`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Collection, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from mmzoo.errors import (
    BuildError,
    DatasetError,
    MissingPluginError,
    MmzooError,
    SpecError,
    UnknownNameError,
    WeightsError,
)
from mmzoo.registry import Registry, Resolved
from mmzoo.spec import check_params, merge_overrides, parse_spec, read_yaml

HUB_PREFIX = "hf-hub:"


def create_model(name_or_spec: str | os.PathLike | Mapping, pretrained: bool = False, *,
                 strict: bool = True, relaxed: Collection[str] = (), allow_pickle: bool = False,
                 **overrides: Any):
    """Build a model from a registry name, ``"hf-hub:org/repo[@revision]"``, a directory written by
    ``save_pretrained``, a YAML spec file, or a spec dict.

    ``pretrained`` loads a registry model's published weights (``name.tag`` picks a variant);
    directories and Hub repos always load theirs. ``overrides`` change parts' parameters
    (``head={"num_classes": 5}``); a part changed that way may be re-initialised instead of loaded,
    and ``model.load_report`` says so. ``strict=False`` or ``relaxed=["head"]`` accept parts
    that the weights do not fit. ``allow_pickle`` opts in to pickle checkpoints (never by default).
    """
    from mmzoo.plugins import get_registry

    registry = get_registry()
    if isinstance(name_or_spec, Mapping):
        spec = parse_spec(dict(name_or_spec), "spec")
        if pretrained:
            raise MmzooError("pretrained=True needs a model that has weights (a registry name with weights, "
                             "a directory or 'hf-hub:org/repo'); a spec dict has none")
        return build_model(merge_overrides(spec, overrides), registry=registry)
    if not isinstance(name_or_spec, (str, os.PathLike)):
        raise SpecError("create_model: expected a model name, 'hf-hub:org/repo', a directory, a YAML file or "
                        f"a spec dict, got {type(name_or_spec).__name__}")
    source = os.fspath(name_or_spec)
    load = {"strict": strict, "relaxed": relaxed, "allow_pickle": allow_pickle}
    if source.startswith(HUB_PREFIX):
        from mmzoo.hub import download_model_dir, parse_hub_id

        repo_id, revision = parse_hub_id(source)
        directory = download_model_dir(repo_id, revision, allow_pickle=allow_pickle)
        return load_model_dir(directory, overrides, source=source, registry=registry, **load)
    path = Path(source).expanduser()
    if path.is_dir():
        return load_model_dir(path, overrides, source=source, registry=registry, **load)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if pretrained:
            raise MmzooError(f"pretrained=True: {source} is a spec file without weights; use a registry name "
                             f"with weights, a directory or 'hf-hub:org/repo'")
        spec = parse_spec(read_yaml(path), str(path), allowed=("encoders", "fusion", "head", "description"))
        spec.pop("description", None)
        return build_model(merge_overrides(spec, overrides), registry=registry)
    return _from_registry(registry, source, pretrained, overrides, load)


def _from_registry(registry: Registry, name: str, pretrained: bool, overrides: dict, load: dict):
    entry, tag = registry.model(name)
    where = f"models.{entry.name}"
    spec = merge_overrides(entry.spec, overrides, where=f"{where} (overrides)")
    if not pretrained and tag is None:
        return build_model(spec, name=entry.name, registry=registry, where=where)
    if not entry.weights:
        have = ", ".join(registry.model_names(pretrained=True)) or "none yet"
        raise WeightsError(f"model '{entry.name}' has no published weights (no 'weights:' in its registry "
                           f"entry); build it with pretrained=False. Models with weights: {have}")
    from mmzoo.hub import download_registry_weights

    weights_file = download_registry_weights(entry.weights[tag or entry.default_tag],
                                             allow_pickle=load["allow_pickle"])
    return _build_and_load(spec, weights_file, entry.spec, name=entry.name, registry=registry,
                           where=where, source=f"{name} ({weights_file})", **load)


def load_model_dir(directory: Path, overrides: dict, *, source: str, registry: Registry,
                   strict: bool = True, relaxed: Collection[str] = (), allow_pickle: bool = False):
    """Rebuild a model saved by ``save_pretrained`` (or downloaded from the Hub) and load its weights."""
    from mmzoo.model import CONFIG_NAME, WEIGHTS_NAME

    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise MmzooError(f"{source}: not an mmzoo model directory (no {CONFIG_NAME}); it needs the "
                         f"{CONFIG_NAME} and {WEIGHTS_NAME} that save_pretrained writes")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "mmzoo" or "spec" not in config:
        raise SpecError(f"{config_path}: not an mmzoo config (expected \"format\": \"mmzoo\" and a \"spec\")")
    where = f"{source}: config.json spec"
    saved = parse_spec(config["spec"], where)
    spec = merge_overrides(saved, overrides, where=f"{source} (overrides)")
    weights_file = directory / WEIGHTS_NAME
    if not weights_file.is_file():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        if pickles and allow_pickle:
            weights_file = directory / pickles[0]
        elif pickles:
            raise WeightsError(f"{source} has only pickle weights ({', '.join(pickles)}), which can run code "
                               f"when loaded; mmzoo loads {WEIGHTS_NAME}. Pass allow_pickle=True if you trust it")
        else:
            raise WeightsError(f"{source}: no {WEIGHTS_NAME} next to {CONFIG_NAME}")
    return _build_and_load(spec, weights_file, saved, name=config.get("name"), registry=registry, where=where,
                           source=source, strict=strict, relaxed=relaxed, allow_pickle=allow_pickle,
                           requires=config.get("requires") or {})


def _build_and_load(spec: dict, weights_file: Path, saved_spec: dict, *, name, registry, where, source,
                    strict, relaxed, allow_pickle, requires: Mapping[str, str] | None = None):
    from mmzoo.weights import load_weights, skip_init

    reasons = _override_reasons(saved_spec, spec)
    try:
        with skip_init():
            model = build_model(spec, name=name, registry=registry, where=where, for_weights=True,
                                requires=requires)
    except (SpecError, UnknownNameError):
        raise
    except Exception:  # a part that cannot be built with parameters on meta: build it normally
        model = build_model(spec, name=name, registry=registry, where=where, for_weights=True, requires=requires)

    def materialize(part: str):
        return _build_part_of(model, part, spec, registry, where)

    model.load_report = load_weights(model, weights_file, strict=strict, relaxed=set(relaxed) | set(reasons),
                                     reasons=reasons, materialize=materialize, allow_pickle=allow_pickle)
    model.load_report.source = source
    return model


def _override_reasons(saved: dict, spec: dict) -> dict[str, str]:
    """Parts an override changed, with what changed (these may be re-initialised)."""
    reasons = {}
    pairs = [(f"encoders.{k}", saved["encoders"].get(k), v) for k, v in spec["encoders"].items()]
    pairs += [("fusion", saved["fusion"], spec["fusion"]), ("head", saved["head"], spec["head"])]
    for part, before, after in pairs:
        if before != after:
            before = before or {}
            changed = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
                       if before.get(k) != after.get(k)]
            reasons[part] = "changed by override (" + ", ".join(changed) + ")"
    return reasons


# ----- composition ------------------------------------------------------------------------------
def build_model(spec: dict, *, name: str | None = None, registry: Registry | None = None, where: str = "spec",
                for_weights: bool = False, requires: Mapping[str, str] | None = None):
    """Compose a model from a normalised spec (see :func:`mmzoo.spec.parse_spec`)."""
    from mmzoo.model import MultimodalModel
    from mmzoo.plugins import get_registry

    registry = registry or get_registry()
    spec = copy.deepcopy(spec)
    used: dict[str, str] = {}
    encoders = {}
    for key, part in spec["encoders"].items():
        resolved = _resolve(registry, "encoder", part, f"{where}.encoders.{key}", requires)
        encoders[key] = _call(resolved, part, (), f"{where}.encoders.{key}", for_weights)
        _check_dim(encoders[key], f"{where}.encoders.{key} ({part['type']})")
        _pin(part, encoders[key])
        used[resolved.dist] = _version(resolved.dist)
    input_dims = {key: enc.output_dim for key, enc in encoders.items()}
    fusion_at = f"{where}.fusion"
    resolved = _resolve(registry, "fusion", spec["fusion"], fusion_at, requires)
    fusion = _call(resolved, spec["fusion"], (input_dims,), fusion_at, for_weights)
    _check_dim(fusion, f"{fusion_at} ({spec['fusion']['type']})")
    _pin(spec["fusion"], fusion)
    used[resolved.dist] = _version(resolved.dist)
    _check_tokens(fusion, encoders, spec, where)
    head_at = f"{where}.head"
    resolved = _resolve(registry, "head", spec["head"], head_at, requires)
    head = _call(resolved, spec["head"], (fusion.output_dim,), head_at, for_weights)
    _pin(spec["head"], head)
    used[resolved.dist] = _version(resolved.dist)
    _check_fusion_head(fusion, head, spec, where)
    return MultimodalModel(encoders, fusion, head, spec=spec, name=name, requires=dict(sorted(used.items())))


def _pin(part_spec: dict, part: Any) -> None:
    """Record what a part resolved (e.g. the commit of a Hub revision) so a saved spec rebuilds it exactly."""
    resolved = getattr(part, "resolved_params", None)
    if isinstance(resolved, Mapping):
        part_spec.update(copy.deepcopy(dict(resolved)))


def _build_part_of(model, part: str, spec: dict, registry: Registry, where: str):
    """A freshly initialised copy of one part of ``model`` (for parts the weights cannot fill)."""
    if part.startswith("encoders."):
        key = part.split(".", 1)[1]
        return _call(_resolve(registry, "encoder", spec["encoders"][key], f"{where}.{part}"),
                     spec["encoders"][key], (), f"{where}.{part}", True)
    if part == "fusion":
        dims = {k: e.output_dim for k, e in model.encoders.items()}
        return _call(_resolve(registry, "fusion", spec["fusion"], f"{where}.fusion"), spec["fusion"], (dims,),
                     f"{where}.fusion", True)
    return _call(_resolve(registry, "head", spec["head"], f"{where}.head"), spec["head"],
                 (model.fusion.output_dim,), f"{where}.head", True)


def _resolve(registry: Registry, kind: str, part: dict, where: str,
             requires: Mapping[str, str] | None = None) -> Resolved:
    try:
        return registry.resolve(kind, part["type"], where=f"{where}.type")
    except UnknownNameError as exc:
        installed = {d.lower() for d in registry.dists()}
        absent = {d: v for d, v in (requires or {}).items() if d.lower() not in installed}
        if not absent:
            raise
        pins = " ".join(f"'{d}=={v}'" for d, v in absent.items())
        raise MissingPluginError(f"{exc}. The model's config.json needs distribution(s) that are not installed: "
                        f"{', '.join(f'{d} {v}' for d, v in absent.items())}; install with: pip install {pins}") \
            from None


def _call(resolved: Resolved, part: dict, leading: tuple, where: str, for_weights: bool):
    factory = resolved.factory()
    params = {k: v for k, v in part.items() if k != "type"}
    check_params(factory, params, where, leading=len(leading))
    if for_weights and _accepts(factory, "pretrained"):
        params["pretrained"] = False  # the model's own weights overwrite whatever a part would fetch
    try:
        return factory(*leading, **params)
    except MmzooError as exc:
        named = f"'{part['type']}'" in str(exc)  # the part's own message already names it
        raise type(exc)(f"{where}: {exc}" if named else f"{where} ({part['type']}): {exc}") from None
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise BuildError(f"{where} ({part['type']}): cannot build it: {type(exc).__name__}: {exc}") from exc


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


def _check_tokens(fusion: Any, encoders: dict, spec: dict, where: str) -> None:
    if not getattr(fusion, "requires_tokens", False):
        return
    pooled_only = [k for k, e in encoders.items() if getattr(e, "provides_tokens", None) is False]
    if pooled_only:
        names = ", ".join(f"{k} ({spec['encoders'][k]['type']})" for k in pooled_only)
        raise BuildError(f"{where}.fusion ({spec['fusion']['type']}) works on token sequences, but encoder(s) "
                         f"{names} give only pooled features; use encoders with token outputs or a pooled "
                         f"fusion such as concat or gated")


def _check_fusion_head(fusion: Any, head: Any, spec: dict, where: str) -> None:
    gives = getattr(fusion, "output_kind", "tensor")
    takes = getattr(head, "input_kind", "tensor")
    if gives != takes:
        f, h = spec["fusion"]["type"], spec["head"]["type"]
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
    """Build a registered dataset: ``factory(split=split, **params)``; items are example dicts."""
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
