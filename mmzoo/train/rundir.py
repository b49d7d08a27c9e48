"""The run directory: never overwritten without ``resume``, and where a resume starts from.

Layout::

    RUN_DIR/config.yaml      the resolved config
    RUN_DIR/metrics.jsonl    training and evaluation records
    RUN_DIR/curves.png       loss and metrics over steps
    RUN_DIR/checkpoints/     step-NNNNNN/ (model.safetensors + trainer_state.pt)
    RUN_DIR/model/           the final model (save_pretrained), ready for `mmzoo push`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmzoo.errors import ConfigError
from mmzoo.train.checkpoint import CheckpointManager, is_checkpoint
from mmzoo.train.config import TrainConfig

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"


@dataclass(frozen=True)
class RunPlan:
    """Where the run writes, and the checkpoint it resumes from (None: a fresh start)."""

    run_dir: Path
    resume_from: Path | None


def plan_run(config: TrainConfig) -> RunPlan:
    """Decide (on rank 0, or in the launcher) what the run does with its directory; raise ConfigError
    for a directory that would be overwritten or a resume path that is not a checkpoint."""
    run_dir = Path(config.output_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output_dir: '{run_dir}' exists and is a file, not a directory")
    occupied = run_dir.is_dir() and any(run_dir.iterdir())
    if config.resume is None:
        if occupied:
            raise ConfigError(
                f"output_dir: '{run_dir}' already exists and is not empty; it is never overwritten. Set "
                f"resume: auto (or --set resume=auto) to continue that run, or choose a new output_dir"
            )
        return RunPlan(run_dir, None)
    if config.resume == "auto":
        return RunPlan(run_dir, CheckpointManager(run_dir / CHECKPOINTS_DIR, 1).latest())
    source = Path(config.resume).expanduser()
    checkpoint = find_checkpoint(source)
    if checkpoint is None:
        raise ConfigError(
            f"resume: '{source}' is not a checkpoint; expected 'auto', a checkpoint directory (with "
            "model.safetensors and trainer_state.pt) or a run directory that has checkpoints"
        )
    same_run = run_dir.resolve() in checkpoint.resolve().parents
    if occupied and not same_run:
        raise ConfigError(
            f"output_dir: '{run_dir}' already exists and is not empty, and resume points at another run "
            f"('{source}'); choose a new output_dir for the continued run"
        )
    return RunPlan(run_dir, checkpoint)


def find_checkpoint(path: Path) -> Path | None:
    """``path`` itself when it is a checkpoint, else the latest checkpoint of the run at ``path``."""
    if path.is_dir() and is_checkpoint(path):
        return path
    for directory in (path / CHECKPOINTS_DIR, path):
        latest = CheckpointManager(directory, 1).latest()
        if latest is not None:
            return latest
    return None
