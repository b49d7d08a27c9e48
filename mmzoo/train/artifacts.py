"""What rank 0 writes besides checkpoints: config.yaml, run.json, curves.png and the final model/."""

from __future__ import annotations

import json
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmzoo.errors import StorageError
from mmzoo.saved import CONFIG_NAME
from mmzoo.storage import writing
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import TrainConfig
from mmzoo.train.plot import plot_curves
from mmzoo.train.rundir import TEMP_PREFIX, RunDir


def write_run_files(run: RunDir, config: TrainConfig, info: dict[str, Any]) -> None:
    """The resolved ``config.yaml`` and ``run.json`` (world size, device, versions, resume point)."""
    import yaml

    run.path.mkdir(parents=True, exist_ok=True)
    with writing(run.config_file):
        ckpt.atomic_write_text(
            run.config_file, yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
        )
    info = {**info, "torch": torch.__version__, "python": platform.python_version(), "argv": sys.argv}
    with writing(run.run_info_file):
        ckpt.atomic_write_text(run.run_info_file, json.dumps(info, indent=2) + "\n")


def plot(run: RunDir) -> None:
    """Redraw ``curves.png`` from ``metrics.jsonl``."""
    if run.metrics_file.exists():
        plot_curves(run.metrics(), run.curves_file, title=run.path.name)


@dataclass(frozen=True)
class FinalWeights:
    """Which step ``model/`` holds (``final_model``): its step, ``last`` or ``best``, the checkpoint to
    load it from (None: the weights in memory are the ones) and the evaluation logged at that step."""

    step: int
    checkpoint: str
    source: Path | None
    metrics: dict[str, float]
    eval_examples: int | None


def choose_final_weights(
    run: RunDir,
    config: TrainConfig,
    *,
    step: int,
    best: dict[str, Any] | None,
    last_eval: dict[str, float],
    eval_examples: int | None,
) -> tuple[FinalWeights, str | None]:
    """What ``model/`` is made of, and a note when ``final_model: best`` had to fall back to the last step."""
    last = FinalWeights(step, "last", None, dict(last_eval), eval_examples)
    if config.final_model != "best":
        return last, None
    if best is None:
        return last, (
            f"note: final_model is 'best', but no evaluation reported best_metric '{config.best_metric}'; "
            "model/ holds the last step"
        )
    if best["step"] == step:
        return FinalWeights(step, "best", None, dict(last_eval), eval_examples), None
    logged = run.eval_at(best["step"])
    metrics, examples = logged if logged else ({config.best_metric: best["value"]}, None)
    return FinalWeights(best["step"], "best", run.checkpoint(best["step"]), metrics, examples), None


def save_model(
    model: nn.Module,
    run: RunDir,
    config: TrainConfig,
    *,
    weights: FinalWeights,
    run_steps: int,
    world_size: int,
) -> Path:
    """``model.save_pretrained(RUN_DIR/model)`` with the run's metrics and datasets, swapped in whole.

    ``weights`` says which step: for a checkpoint other than the last, its weights are loaded into
    ``model`` first (as the trainer ends, like ``load_best_model_at_end`` in other trainers)."""
    if weights.source is not None:
        ckpt.load_model_weights(model, weights.source)
    data = config.data
    training = {
        "steps": weights.step,
        "run_steps": run_steps,
        "checkpoint": weights.checkpoint,
        "world_size": world_size,
        "precision": config.precision,
        "eval_dataset": data.eval.dataset if data.eval else None,
        "eval_split": data.eval.split if data.eval else None,
        "eval_examples": weights.eval_examples,
    }
    if weights.checkpoint == "best":
        training.update(best_metric=config.best_metric, best_mode=config.best_mode)
    extra = {
        "metrics": dict(weights.metrics),
        "datasets": list(dict.fromkeys([data.train.dataset] + ([data.eval.dataset] if data.eval else []))),
        "training": training,
    }
    target = run.model_dir
    temp = target.with_name(TEMP_PREFIX + target.name)
    shutil.rmtree(temp, ignore_errors=True)
    checkpoint = ckpt.CheckpointManager(run.checkpoints_dir, 1).latest()
    then = (f"; the final model was not written, and checkpoint {checkpoint.name} is intact. Free some space "
            "and continue with resume: auto, which writes the final model" if checkpoint else
            "; the final model was not written")
    try:
        with writing(temp / CONFIG_NAME):  # model.safetensors: save_weights names it itself
            model.save_pretrained(temp, extra=extra)
        with writing(temp):
            for child in temp.iterdir():
                ckpt.fsync_file(child)
    except StorageError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise StorageError(f"{exc}{then}") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    temp.rename(target)
    ckpt.fsync_dir(run.path)
    return target
