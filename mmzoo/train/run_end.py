"""How a training run ends: its :class:`TrainResult`, the final model it publishes, and the error
that stops it on a non-finite loss.

The trainer decides when a run ends; this module writes and words what the end leaves behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import MmzooError
from mmzoo.train import artifacts
from mmzoo.train.config import TrainConfig
from mmzoo.train.metrics import MetricsLog
from mmzoo.train.rundir import RunDir


class NonFiniteLossError(MmzooError):
    """The training loss became NaN or infinite; the run stopped before applying that step."""


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    step: int
    total_steps: int
    world_size: int
    completed: bool
    stopped_by: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    eval_examples: int | None = None


def non_finite_error(
    loss_total: float, *, step: int, epoch: int, last_saved: tuple[int, Path] | None
) -> NonFiniteLossError:
    """The error for a loss of ``loss_total`` at optimizer step ``step`` (not applied), saying which
    checkpoint is the last good one."""
    kept = (
        f"the last good checkpoint is {last_saved[1]} (step {last_saved[0]})"
        if last_saved
        else "no checkpoint had been written yet"
    )
    return NonFiniteLossError(
        f"the training loss is {loss_total} at step {step} (epoch {epoch}); training "
        f"stopped without applying that step, and {kept}. Lower optim.lr, set optim.clip_grad_norm, "
        "or check the data for NaN/inf values"
    )


def publish_final_model(
    model: Any,
    run: RunDir,
    config: TrainConfig,
    *,
    step: int,
    best: dict[str, Any] | None,
    last_eval: dict[str, float],
    eval_examples: int | None,
    world_size: int,
    log: MetricsLog,
    plot: Callable[[], None],
    message: Callable[[str], None],
) -> None:
    """Rank 0 at the end of a completed run: save ``config.final_model``'s weights (the last step's
    or the best checkpoint's) as the run's model, log the final record and plot the metrics."""
    weights, note = artifacts.choose_final_weights(
        run,
        config,
        step=step,
        best=best,
        last_eval=last_eval,
        eval_examples=eval_examples,
    )
    if note:
        message(note)
    artifacts.save_model(model, run, config, weights=weights, run_steps=step, world_size=world_size)
    final = {
        "step": step,
        "split": "final",
        "world_size": world_size,
        **({"model_step": weights.step} if weights.step != step else {}),
        **{f"eval_{k}": v for k, v in weights.metrics.items()},
    }
    log.write(final)
    plot()
    which = f" (the best, step {weights.step})" if weights.checkpoint == "best" else ""
    message(f"done: {step} steps; model{which} saved to {run.model_dir}")
