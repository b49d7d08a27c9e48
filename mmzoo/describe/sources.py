"""What each kind of model source holds, gathered without building anything or downloading weights.

A registry name, a spec file, a model directory (``local-dir:`` or a path), a published model
(``hf-hub:``, its ``config.json`` only) and a training run directory each become one :class:`Facts`:
the spec to describe, what the model's ``config.json`` records (a :class:`~mmzoo.saved.SavedModel`),
its weights files (:mod:`mmzoo.describe.weights`) and, for a run, what the run wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzoo.describe import weights as files
from mmzoo.errors import SpecError
from mmzoo.saved import CONFIG_NAME, SavedModel, read_model_dir
from mmzoo.sources import HF_HUB_PREFIX, LOCAL_DIR_PREFIX, parse_source

if TYPE_CHECKING:
    from mmzoo.registry import Registry
    from mmzoo.spec import Spec


@dataclass
class Facts:
    """One model source, described: ``kind`` is ``registry``, ``spec-file``, ``model-dir``, ``hf-hub`` or
    ``run``; ``where`` locates the spec in messages."""

    kind: str
    spec: Spec
    where: str
    description: str = ""
    saved: SavedModel | None = None
    weights: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] | None = None
    revision: str | None = None


def gather(name: str, registry: Registry) -> Facts:
    """The :class:`Facts` of ``name`` (anything ``create_model`` takes as a string, or a run directory)."""
    run_dir = _run_dir(name)
    if run_dir is not None:
        return _run(run_dir, name, registry)
    source = parse_source(name, registry)
    if source.kind == "hf-hub":
        return _hub(name)
    if source.kind == "local-dir":
        return _model_dir(Path(source.target), name)
    if source.kind == "spec-file":
        from mmzoo.spec import SPEC_KEYS, Spec, read_yaml

        raw = read_yaml(source.target, what="spec file")
        spec = Spec.from_dict(raw, str(source.target), allowed=(*SPEC_KEYS, "description"))
        description = raw.get("description") if isinstance(raw.get("description"), str) else ""
        return Facts("spec-file", spec, str(source.target), description=description)
    entry, _ = registry.model(name)
    return Facts("registry", entry.spec, f"models.{entry.name}", description=entry.description,
                 weights=files.registry_files(entry.weights))


def _run_dir(name: str) -> Path | None:
    """``name`` as a training run directory (``config.yaml`` or ``checkpoints/`` inside, no ``config.json``)."""
    from mmzoo.train.rundir import RunDir

    text = name[len(LOCAL_DIR_PREFIX):] if name.startswith(LOCAL_DIR_PREFIX) else name
    if name.startswith(HF_HUB_PREFIX):
        return None
    path = Path(text).expanduser()
    if not path.is_dir() or (path / CONFIG_NAME).is_file():
        return None
    run = RunDir(path)
    return path if run.is_run() or run.final_model() is not None or run.checkpoints() else None


def _model_dir(path: Path, label: str) -> Facts:
    if not path.is_dir():
        raise SpecError(f"{label}: no such directory; give a model directory, a run directory, a registry "
                        f"name or hf-hub:org/repo")
    saved = read_model_dir(path, source=label)
    return Facts("model-dir", saved.spec, f"{label}: {CONFIG_NAME} spec", saved=saved,
                 weights=files.model_dir_files(saved))


def _hub(name: str) -> Facts:
    from mmzoo.hub.download import download_config, parse_hub_id

    repo_id, revision = parse_hub_id(name)
    saved, commit = download_config(repo_id, revision)
    return Facts("hf-hub", saved.spec, f"{name}: {CONFIG_NAME} spec", saved=saved,
                 weights=files.hub_model_files(repo_id, commit), revision=commit)


def _run(path: Path, label: str, registry: Registry) -> Facts:
    """A run: its final model (``model/``) when training finished, else the model its config names; the
    weights of ``model/`` and of every checkpoint, and the run's steps, best and ``final_model``."""
    from mmzoo.train.rundir import MODEL_DIR, RunDir, read_checkpoint_info

    run = RunDir(path)
    raw = _raw_config(run)
    checkpoints = run.checkpoints()
    latest = read_checkpoint_info(checkpoints[-1][1]) if checkpoints else None
    best = (latest or {}).get("best") if isinstance((latest or {}).get("best"), dict) else None
    summary: dict[str, Any] = {
        "path": str(path),
        "steps": checkpoints[-1][0] if checkpoints else None,
        "finished": run.final_model() is not None,
        "final_model": raw.get("final_model", "last"),
        "best_metric": raw.get("best_metric"),
        "best": best,
    }
    weights = []
    final = run.final_model()
    if final is not None:
        saved = read_model_dir(final, source=f"{label}/{MODEL_DIR}")
        weights += [{**w, "checkpoint": MODEL_DIR, "step": saved.training.get("steps")}
                    for w in files.model_dir_files(saved, prefix=f"{MODEL_DIR}/")]
        spec, where = saved.spec, f"{label}/{MODEL_DIR}: {CONFIG_NAME} spec"
    else:
        saved = None
        spec, where = _configured_spec(run, raw, registry), f"{run.config_file}: model"
    best_step = best.get("step") if best else None
    for step, directory in checkpoints:
        which = [w for w, hit in (("best", step == best_step), ("last", step == checkpoints[-1][0])) if hit]
        shown = directory.relative_to(path).as_posix()
        weights.append(files.local_file(directory / "model.safetensors", f"{shown}/model.safetensors",
                                        checkpoint=directory.name, step=step, marks=which))
        evaluation = run.eval_at(step)
        if evaluation:
            weights[-1]["metrics"] = evaluation[0]
    return Facts("run", spec, where, saved=saved, weights=weights, run=summary)


def _raw_config(run) -> dict[str, Any]:
    from mmzoo.train.config import read_yaml

    return read_yaml(run.config_file) if run.config_file.is_file() else {}


def _configured_spec(run, raw: dict[str, Any], registry: Registry) -> Spec:
    """The spec the run's config names (inline, or a source with overrides) when there is no ``model/``."""
    from mmzoo.errors import ConfigError
    from mmzoo.train.config import validate_section

    if not raw:
        raise ConfigError(f"{run.path}: the run has no {run.config_file.name} and no model/; nothing says what "
                          f"model it trains")
    model = validate_section("model", raw.get("model"), str(run.config_file))
    if model.spec is not None:
        from mmzoo.spec import Spec

        return Spec.from_dict(model.spec, f"{run.config_file}: model")
    return gather(model.name, registry).spec.merge(model.overrides, where=f"{run.config_file}: model.overrides")
