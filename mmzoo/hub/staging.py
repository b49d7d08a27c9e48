"""What a push uploads, gathered into a staging directory: the model files and, from a run, its record.

- a model directory (``save_pretrained``) or a run's ``model/``: its ``config.json`` and ``model.safetensors``;
- a run's checkpoint (``checkpoint="best"``, ``"last"``, ``"step-N"``): that checkpoint's
  ``model.safetensors`` as it is, and a ``config.json`` made from the run (the model's spec, labels and
  requirements from ``model/config.json``, or from the run's config when training did not finish) with
  the metrics logged at that step and a ``training`` record that says which step it is;
- from a run directory, beside the model: ``curves.png``, ``training/config.yaml`` (the resolved
  config) and ``training/metrics.jsonl`` (the log), with paths into home directories rewritten
  (:mod:`mmzoo.hub.leaks`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mmzoo.errors import HubError
from mmzoo.hub.leaks import redact_home
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME, check_labels, read_model_dir
from mmzoo.tensorfile import read_layout

RUN_MODEL_DIR = "model"  # where a training run directory keeps its final model
TRAINING_CONFIG = "training/config.yaml"
TRAINING_METRICS = "training/metrics.jsonl"


def resolve_push_source(path: str | Path, *, checkpoint: str | None = None) -> tuple[Path | None, Path | None]:
    """A model directory (``config.json`` + ``model.safetensors``) or a run directory: returns (model dir,
    run dir); the model dir is None when a ``checkpoint`` of the run is to be published instead.
    Anything else is a HubError saying what is expected."""
    from mmzoo.train.rundir import RunDir

    path = Path(path).expanduser()
    if not path.is_dir():
        raise HubError(f"push: {path} is not a directory; give a training run directory (with model/ inside) "
                       f"or a model directory written by save_pretrained ({CONFIG_NAME} + {WEIGHTS_NAME})")
    run = RunDir(path)
    if (path / CONFIG_NAME).is_file():
        model_dir, run_dir = path, (path.parent if path.name == RUN_MODEL_DIR else None)
    elif (path / RUN_MODEL_DIR / CONFIG_NAME).is_file():
        model_dir, run_dir = path / RUN_MODEL_DIR, path
    elif run.is_run() or run.checkpoints():
        if checkpoint is None:
            raise HubError(f"push: {path} is a run directory without model/ (training did not finish); publish "
                           f"one of its checkpoints with --checkpoint last, best or step-N")
        return None, path
    else:
        raise HubError(f"push: {path} is not a model: it has no {CONFIG_NAME} (nor model/{CONFIG_NAME}); give a "
                       f"training run directory or a directory written by model.save_pretrained()")
    if checkpoint is not None:
        if run_dir is None:
            raise HubError(f"push: --checkpoint {checkpoint} needs a training run directory; {path} is a model "
                           f"directory without a run around it")
        return None, run_dir
    saved = read_model_dir(model_dir)
    if saved.weights_file is None:
        extra = ""
        if saved.pickles:
            extra = f" (it has {', '.join(saved.pickles)}: convert pickle checkpoints to safetensors)"
        raise HubError(f"push: {model_dir} has {CONFIG_NAME} but no {WEIGHTS_NAME}{extra}")
    read_layout(saved.weights_file, str(model_dir))
    return model_dir, run_dir


def stage_directory(model_dir: Path, staging: Path) -> None:
    """Copy a model directory's config and weights into ``staging``."""
    staging.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(model_dir / name, staging / name)


def stage_checkpoint(run_dir: Path, which: str, staging: Path) -> None:
    """Stage checkpoint ``which`` (``best``, ``last``, ``step-N``) of the run as a model directory: its
    weights file unchanged, and a ``config.json`` saying which step it is and what it scored there."""
    from mmzoo.train.rundir import RunDir, read_checkpoint_info

    run = RunDir(run_dir)
    path = run.checkpoint(which)
    info = read_checkpoint_info(path) or {}
    step = _checkpoint_step(path, info)
    steps = [s for s, _ in run.checkpoints()]
    label = "best" if which == "best" else "last" if which in ("last", "latest") or step == steps[-1] else None
    label = label or f"step-{step}"
    config = _base_config(run)
    raw = _run_config(run)
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    eval_split = data.get("eval") if isinstance(data.get("eval"), dict) else {}
    logged = run.eval_at(step)
    training = {k: v for k, v in (config.get("training") or {}).items()
                if k in ("world_size", "precision", "eval_dataset", "eval_split")}
    training.update(steps=step, run_steps=max(steps[-1], training.get("run_steps") or 0), checkpoint=label)
    training.setdefault("precision", raw.get("precision"))
    training.setdefault("eval_dataset", eval_split.get("dataset"))
    training.setdefault("eval_split", eval_split.get("split"))
    if isinstance(info.get("world_size"), int):
        training["world_size"] = info["world_size"]
    training["eval_examples"] = logged[1] if logged else None
    if label == "best":
        best = info.get("best") if isinstance(info.get("best"), dict) else {}
        training.update(best_metric=best.get("metric") or raw.get("best_metric"), best_mode=raw.get("best_mode"))
    config["training"] = {k: v for k, v in training.items() if v is not None}
    config["metrics"] = logged[0] if logged else {}
    if config.get("labels") is None and info.get("labels") is not None:  # a run stopped before model/ existed
        config["labels"] = list(check_labels(info["labels"], f"{path}/checkpoint.json labels"))
    if not config.get("datasets"):
        train_split = data.get("train") if isinstance(data.get("train"), dict) else {}
        names = [s.get("dataset") for s in (train_split, eval_split)]
        config["datasets"] = list(dict.fromkeys(n for n in names if isinstance(n, str)))
    staging.mkdir(parents=True, exist_ok=True)
    weights = path / WEIGHTS_NAME
    read_layout(weights, str(path))
    shutil.copyfile(weights, staging / WEIGHTS_NAME)
    (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _checkpoint_step(path: Path, info: dict[str, Any]) -> int:
    step = info.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    return int(path.name.rsplit("-", 1)[-1])


def _run_config(run) -> dict[str, Any]:
    from mmzoo.train.config import read_yaml

    return read_yaml(run.config_file) if run.config_file.is_file() else {}


def _base_config(run) -> dict[str, Any]:
    """What the run's model is (``config.json`` keys: spec, name, requires, labels...): from ``model/``
    when training finished, else rebuilt from the run's config (parameters never allocated)."""
    final = run.final_model()
    if final is not None:
        read_model_dir(final)  # checked before any of it is reused
        return json.loads((final / CONFIG_NAME).read_text(encoding="utf-8"))
    from mmzoo.train.config import validate_section
    from mmzoo.weights import skip_init

    model_config = validate_section("model", _run_config(run).get("model"), str(run.config_file))
    model_config.pretrained = False  # the checkpoint holds every weight
    with skip_init():
        model = model_config.build()
    return model.config()


def stage_run_files(run_dir: Path, staging: Path) -> list[str]:
    """Copy the run's curves, resolved config and metrics log into ``staging`` (paths into home
    directories rewritten); returns the text files written."""
    import yaml

    from mmzoo.modelcard import CURVES_FILE
    from mmzoo.train.rundir import RunDir

    run = RunDir(run_dir)
    if run.curves_file.is_file():
        shutil.copyfile(run.curves_file, staging / CURVES_FILE)
    written = []
    if run.config_file.is_file():
        config = redact_home(_run_config(run))
        (staging / TRAINING_CONFIG).parent.mkdir(parents=True, exist_ok=True)
        (staging / TRAINING_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                               encoding="utf-8")
        written.append(TRAINING_CONFIG)
    records = [redact_home(r) for r in run.metrics() if isinstance(r, dict)]
    if records:
        (staging / TRAINING_METRICS).parent.mkdir(parents=True, exist_ok=True)
        (staging / TRAINING_METRICS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        written.append(TRAINING_METRICS)
    return written
