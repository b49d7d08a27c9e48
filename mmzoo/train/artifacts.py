"""What rank 0 writes besides checkpoints: config.yaml, run.json, curves.png and the final model/."""

from __future__ import annotations

import json
import platform
import shutil
import sys
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


def save_model(
    model: nn.Module,
    run: RunDir,
    config: TrainConfig,
    *,
    metrics: dict[str, float],
    eval_examples: int | None,
    steps: int,
    world_size: int,
) -> Path:
    """``model.save_pretrained(RUN_DIR/model)`` with the run's metrics and datasets, swapped in whole."""
    data = config.data
    extra = {
        "metrics": dict(metrics),
        "datasets": list(dict.fromkeys([data.train.dataset] + ([data.eval.dataset] if data.eval else []))),
        "training": {
            "steps": steps,
            "world_size": world_size,
            "precision": config.precision,
            "eval_dataset": data.eval.dataset if data.eval else None,
            "eval_split": data.eval.split if data.eval else None,
            "eval_examples": eval_examples,
        },
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
