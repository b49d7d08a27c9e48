"""The run directory: its file names, reading what a run wrote, and whether a new run may write there.

Layout::

    RUN_DIR/config.yaml      the resolved config
    RUN_DIR/run.json         world size, strategy, device, versions, where the run resumed from
    RUN_DIR/metrics.jsonl    training and evaluation records
    RUN_DIR/curves.png       loss and metrics over steps
    RUN_DIR/checkpoints/     step-NNNNNN/ (model.safetensors, trainer_state.pt, checkpoint.json);
                             under strategy fsdp, sharded/ (torch.distributed.checkpoint: model and
                             optimizer, one file per rank) instead of model.safetensors
    RUN_DIR/model/           the final model (save_pretrained), ready for `mmzoo push`

:class:`RunDir` is the one place that knows these names. Importing this module does not import torch,
so tools that only read runs (the Hub push) stay cheap.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmzoo.errors import ConfigError
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME
from mmzoo.train.config import DataConfig, TrainConfig, read_yaml, validate_config, validate_section

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"

# inside one checkpoint directory
CHECKPOINT_WEIGHTS = WEIGHTS_NAME
CHECKPOINT_STATE = "trainer_state.pt"
CHECKPOINT_INFO = "checkpoint.json"
CHECKPOINT_SHARDED = "sharded"
"""The directory of a sharded checkpoint's model and optimizer state (DCP: ``.metadata`` and one
``__RANK_0.distcp`` file per rank that wrote it)."""
SHARDED_METADATA = ".metadata"

TEMP_PREFIX = ".tmp-"
# the run's lock (held for the run's life, see mmzoo.train.runlock) and who holds it: not run output
LOCK_FILE = ".mmzoo-run.lock"
LOCK_OWNER_FILE = ".mmzoo-run.owner"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def is_sharded(path: Path) -> bool:
    """A checkpoint directory whose weights are sharded (written by ``strategy: fsdp``)."""
    return (path / CHECKPOINT_SHARDED / SHARDED_METADATA).is_file()


def is_checkpoint(path: Path) -> bool:
    """A complete checkpoint directory (its weights, whole or sharded, and its trainer state)."""
    has_weights = (path / CHECKPOINT_WEIGHTS).is_file() or is_sharded(path)
    return has_weights and (path / CHECKPOINT_STATE).is_file()


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """The complete ``step-N`` checkpoints in ``directory``, oldest first (temporaries are never listed)."""
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and is_checkpoint(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def read_checkpoint_info(path: Path) -> dict[str, Any] | None:
    """A checkpoint's ``checkpoint.json`` (step, best, strategy, world size), or None when it has none
    (checkpoints written before mmzoo recorded it)."""
    try:
        info = json.loads((path / CHECKPOINT_INFO).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


class RunDir:
    """A run directory written by ``mmzoo train``: where each file lives and what it holds."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def run_info_file(self) -> Path:
        return self.path / RUN_INFO_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def curves_file(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    def is_run(self) -> bool:
        """The directory holds a run's resolved config."""
        return self.config_file.is_file()

    def is_occupied(self) -> bool:
        """The directory holds something a run wrote (its lock files alone do not count)."""
        return self.path.is_dir() and any(c.name not in (LOCK_FILE, LOCK_OWNER_FILE) for c in self.path.iterdir())

    # --- what the run wrote ----------------------------------------------------------------------

    def config(self) -> TrainConfig:
        """The run's validated config (``config.yaml``)."""
        return validate_config(read_yaml(self._require(self.config_file)), source=str(self.config_file))

    def data_config(self) -> DataConfig:
        """Only the ``data`` section of the run's config, validated: what evaluating the run needs, so a
        run stays evaluable when keys elsewhere in the config schema change."""
        raw = read_yaml(self._require(self.config_file))
        return validate_section("data", raw.get("data"), str(self.config_file))

    def run_info(self) -> dict[str, Any]:
        """``run.json``: world size, strategy, device, versions, resume point."""
        try:
            info = json.loads(self._require(self.run_info_file).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.run_info_file}: not valid JSON ({exc})") from None
        if not isinstance(info, dict):
            raise ConfigError(f"{self.run_info_file}: expected a JSON object")
        return info

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (empty before the first one); a torn last line is skipped."""
        from mmzoo.train.metrics import read_metrics

        return read_metrics(self.metrics_file) if self.metrics_file.is_file() else []

    def eval_at(self, step: int) -> tuple[dict[str, float], int | None] | None:
        """The evaluation logged at ``step``: its metrics (without the ``eval_`` prefix) and example count;
        None when the run logged no evaluation there (the last one wins after a resume redid the step)."""
        found = None
        for record in self.metrics():
            if record.get("split") == "eval" and record.get("step") == step:
                found = record
        if found is None:
            return None
        metrics = {key[len("eval_"):]: value for key, value in found.items()
                   if key.startswith("eval_") and isinstance(value, (int, float)) and not isinstance(value, bool)}
        examples = found.get("examples")
        return metrics, examples if isinstance(examples, int) and not isinstance(examples, bool) else None

    def final_model(self) -> Path | None:
        """``model/`` when training finished and saved it, else None."""
        return self.model_dir if (self.model_dir / CONFIG_NAME).is_file() else None

    # --- checkpoints -----------------------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, directory) of every complete checkpoint, oldest first."""
        return list_checkpoints(self.checkpoints_dir)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def best_checkpoint(self) -> Path | None:
        """The checkpoint of the best evaluation by ``best_metric`` (kept beside the last ones), as
        recorded by the latest checkpoint; None when no evaluation had a best value."""
        latest = self.latest_checkpoint()
        info = read_checkpoint_info(latest) if latest is not None else None
        best = (info or {}).get("best")
        if not isinstance(best, dict) or not isinstance(best.get("step"), int):
            return None
        return dict(self.checkpoints()).get(best["step"])

    def checkpoint(self, which: str | int) -> Path:
        """``"last"`` (or ``"latest"``), ``"best"``, ``"step-N"`` or step ``N``; a ConfigError names the
        checkpoints there are when it does not exist."""
        found = self.checkpoints()
        if not found:
            raise ConfigError(f"{self.path}: the run has no checkpoints (no {CHECKPOINTS_DIR}/step-N)")
        steps = ", ".join(str(step) for step, _ in found)
        if which in ("last", "latest"):
            return found[-1][1]
        if which == "best":
            best = self.best_checkpoint()
            if best is None:
                raise ConfigError(
                    f"{self.path}: no best checkpoint is recorded (the run kept none by best_metric, or its "
                    f"checkpoints predate {CHECKPOINT_INFO}); use 'last' or a step ({steps})"
                )
            return best
        step = _parse_step(which)
        if step is None:
            raise ConfigError(f"checkpoint {which!r}: expected 'last', 'best', 'step-N' or a step number")
        path = dict(found).get(step)
        if path is None:
            raise ConfigError(f"{self.path}: no checkpoint at step {step}; the run has steps {steps}")
        return path

    def _require(self, path: Path) -> Path:
        if not path.is_file():
            raise ConfigError(f"{self.path}: not a run directory (no {path.name})")
        return path


def _parse_step(which: str | int) -> int | None:
    if isinstance(which, int) and not isinstance(which, bool):
        return which if which >= 0 else None
    if not isinstance(which, str):
        return None
    text = which[len("step-") :] if which.startswith("step-") else which
    return int(text) if text.isdigit() else None


# --- where a run writes -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """Where the run writes, and the checkpoint it resumes from (None: a fresh start)."""

    run_dir: Path
    resume_from: Path | None

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)


def plan_run(config: TrainConfig) -> RunPlan:
    """Decide (on rank 0, or in the launcher) what the run does with its directory; raise ConfigError
    for a directory that would be overwritten or a resume path that is not a checkpoint."""
    run = RunDir(config.output_dir)
    run_dir = run.path
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output_dir: '{run_dir}' exists and is a file, not a directory")
    occupied = run.is_occupied()
    if config.resume is None:
        if occupied:
            raise ConfigError(
                f"output_dir: '{run_dir}' already exists and is not empty; it is never overwritten. Set "
                f"resume: auto (or --set resume=auto) to continue that run, or choose a new output_dir"
            )
        return RunPlan(run_dir, None)
    if config.resume == "auto":
        return RunPlan(run_dir, run.latest_checkpoint())
    source = Path(config.resume).expanduser()
    checkpoint = find_checkpoint(source)
    if checkpoint is None:
        raise ConfigError(
            f"resume: '{source}' is not a checkpoint; expected 'auto', a checkpoint directory (with "
            f"{CHECKPOINT_WEIGHTS} or {CHECKPOINT_SHARDED}/, and {CHECKPOINT_STATE}) or a run directory that "
            "has checkpoints"
        )
    same_run = run_dir.resolve() in checkpoint.resolve().parents
    if occupied and not same_run:
        raise ConfigError(
            f"output_dir: '{run_dir}' already exists and is not empty, and resume points at another run "
            f"('{source}'); choose a new output_dir for the continued run"
        )
    return RunPlan(run_dir, checkpoint)


def find_checkpoint(path: Path) -> Path | None:
    """``path`` itself when it is a checkpoint, else the latest checkpoint of the run at ``path`` (or of
    ``path`` as a checkpoints directory)."""
    if path.is_dir() and is_checkpoint(path):
        return path
    for directory in (path / CHECKPOINTS_DIR, path):
        found = list_checkpoints(directory)
        if found:
            return found[-1][1]
    return None
