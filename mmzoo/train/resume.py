"""The trainer's part of a checkpoint: what is saved besides the model and optimizer state, and where
a resumed run continues.

``trainer_state.pt`` holds the position (step, epoch, batches into the epoch, and the batch size and
world size that position was counted in), the schedule and loss-scaler state, every rank's RNG states,
the best checkpoint so far, the latest evaluation and the resolved config. Resuming in the same layout
(world size and batch size) continues bit-exactly; in another layout it continues at the same number
of examples into the epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmzoo.train.optim import reset_base_lrs

if TYPE_CHECKING:
    from pathlib import Path

    from mmzoo.train.trainer import Trainer


def checkpoint_state(trainer: Trainer, rng_states: list[Any]) -> dict[str, Any]:
    """The trainer state of the current step (``rng_states``: every rank's, in rank order)."""
    import mmzoo

    scaler = trainer.precision.scaler
    return {
        "step": trainer.step,
        "epoch": trainer.epoch,
        "batches_in_epoch": trainer.batches_done,
        "batch_size": trainer.config.data.batch_size,
        "world_size": trainer.ctx.world_size,
        "strategy": trainer.strategy.name,
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": rng_states,
        "best": trainer.best,
        "last_eval": trainer.last_eval,
        "eval_examples": trainer.eval_examples,
        "config": trainer.config.to_dict(),
        "mmzoo_version": mmzoo.__version__,
        "labels": list(labels) if (labels := getattr(trainer.model, "labels", None)) is not None else None,
    }


def checkpoint_info(state: dict[str, Any]) -> dict[str, Any]:
    """The plain facts of ``state`` that ``checkpoint.json`` repeats for readers without torch."""
    keys = ("epoch", "world_size", "strategy", "best", "mmzoo_version", "labels")
    return {key: state.get(key) for key in keys}


def restore(trainer: Trainer, state: dict[str, Any], path: Path) -> None:
    """Continue ``trainer`` from a checkpoint's ``state`` (its model and optimizer are restored
    already): schedule, loss scale, position in the data, this rank's RNG states, best and last eval."""
    config = trainer.config
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.step = int(state["step"])
    reset_base_lrs(trainer.optimizer, trainer.scheduler, config.optim, trainer.step)
    if state.get("scaler"):
        trainer.precision.scaler.load_state_dict(state["scaler"])
    trainer.epoch = int(state["epoch"])
    trainer.best = state.get("best")
    trainer.last_eval = dict(state.get("last_eval") or {})
    trainer.eval_examples = state.get("eval_examples")
    trainer.last_saved = (trainer.step, path)
    world_size, batch_size = trainer.ctx.world_size, config.data.batch_size
    if state["world_size"] == world_size and state["batch_size"] == batch_size:
        trainer.batches_done = int(state["batches_in_epoch"])
        trainer.rng_state = state["rng"][trainer.ctx.rank]
    else:
        samples = int(state["batches_in_epoch"]) * state["batch_size"] * state["world_size"]
        trainer.batches_done = min(trainer.batches_per_epoch, samples // (batch_size * world_size))
        trainer.message(
            f"note: resuming with world size {world_size} and batch {batch_size} "
            f"(checkpoint: {state['world_size']} and {state['batch_size']}); training continues at the "
            "same position but not bit-exactly as the original layout would have"
        )
    if trainer.batches_done >= trainer.batches_per_epoch:
        trainer.epoch, trainer.batches_done = trainer.epoch + 1, 0
