"""The builtin ``tensorboard`` logger: every numeric value of every record as a TensorBoard scalar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mmzoo.errors import MmzooError
from mmzoo.loggers import RunInfo

#: Record keys that are not scalars to plot: the x axis, the clock, and the split (part of the tag).
NOT_SCALARS = frozenset({"step", "time", "timestamp", "split"})


def scalar_tags(record: Mapping[str, Any]) -> dict[str, float]:
    """The scalars a record becomes: ``<split>/<name>`` for each number (split ``train`` when the record
    has none; an ``eval_`` style prefix naming the split is dropped: ``eval_accuracy`` -> ``eval/accuracy``)."""
    split = str(record.get("split") or "train")
    tags = {}
    for key, value in record.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = key[len(split) + 1:] if key.startswith(f"{split}_") else key
        tags[f"{split}/{name}"] = float(value)
    return tags


class TensorBoardLogger:
    """Writes TensorBoard event files under the run directory (``log_dir``, relative to it unless
    absolute), one scalar per number of each record at the record's step: ``train/loss``,
    ``train/samples_per_s``, ``eval/accuracy``, ... A resumed run purges the steps it logs again."""

    def __init__(self, log_dir: str = "tensorboard", flush_secs: int = 30) -> None:
        self.log_dir = log_dir
        self.flush_secs = flush_secs
        self.writer = None

    def start(self, run: RunInfo) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise MmzooError(f"log_to 'tensorboard' needs the tensorboard package ({exc}); install it with: "
                             "pip install 'mmzoo[tensorboard]'") from None
        directory = Path(self.log_dir).expanduser()
        directory = directory if directory.is_absolute() else Path(run.run_dir) / directory
        purge = run.resumed_at_step + 1 if run.resumed_at_step is not None else None
        self.writer = SummaryWriter(log_dir=str(directory), purge_step=purge, flush_secs=self.flush_secs)

    def log(self, record: Mapping[str, Any]) -> None:
        if self.writer is None:
            raise MmzooError("TensorBoardLogger.log was called before start")
        step = int(record["step"])
        walltime = _walltime(record.get("timestamp"))
        for tag, value in scalar_tags(record).items():
            self.writer.add_scalar(tag, value, global_step=step, walltime=walltime)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _walltime(timestamp: Any) -> float | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None
