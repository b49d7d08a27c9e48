"""What trainer hooks see: a small read-only view of a running training job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mmzoo.train.config import TrainConfig
    from mmzoo.train.trainer import Trainer


class TrainerView:
    """The state of a training job after an optimizer step, as hooks (``train(config, hooks=[...])``)
    receive it. Every attribute reads the live trainer, so a view kept by a hook stays current.

    Attributes:
        step: optimizer steps done (1 after the first step).
        epoch: the epoch the next step trains in (0-based; it moves on after an epoch's last step).
        total_steps: steps the run trains for; ``steps_per_epoch``: optimizer steps in one epoch.
        config: the validated :class:`~mmzoo.train.config.TrainConfig`.
        model: the model being trained, unwrapped (no DDP or compile wrapper around it; under
            ``fsdp`` its parameters are this rank's shards, DTensors).
        optimizer: its optimizer.
        last_eval: metrics of the latest evaluation (empty before the first).
        run_dir: the run directory.
        rank, world_size, is_main: where this process sits in the job.
        strategy: the training strategy's name (``"single"``, ``"ddp"``, ``"fsdp"``).
        wrapper: the module class the training step runs through (``"DistributedDataParallel"``,
            ``"FSDPModule"``), or None.
        compiled: whether the training step runs through ``torch.compile``.
        eval_compiled: whether evaluation runs through ``torch.compile`` (``compile.eval``).
    """

    __slots__ = ("_trainer",)

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def __repr__(self) -> str:
        return (
            f"TrainerView(step={self.step}/{self.total_steps}, epoch={self.epoch}, "
            f"rank={self.rank}/{self.world_size}, strategy={self.strategy!r})"
        )

    @property
    def step(self) -> int:
        return self._trainer.step

    @property
    def epoch(self) -> int:
        return self._trainer.epoch

    @property
    def total_steps(self) -> int:
        return self._trainer.total_steps

    @property
    def steps_per_epoch(self) -> int:
        return self._trainer.steps_per_epoch

    @property
    def config(self) -> TrainConfig:
        return self._trainer.config

    @property
    def model(self) -> nn.Module:
        return self._trainer.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @property
    def last_eval(self) -> dict[str, float]:
        return dict(self._trainer.last_eval)

    @property
    def run_dir(self) -> Path:
        return self._trainer.run_dir

    @property
    def rank(self) -> int:
        return self._trainer.ctx.rank

    @property
    def world_size(self) -> int:
        return self._trainer.ctx.world_size

    @property
    def is_main(self) -> bool:
        return self._trainer.ctx.is_main

    @property
    def strategy(self) -> str:
        return self._trainer.strategy.name

    @property
    def wrapper(self) -> str | None:
        return self._trainer.strategy.wrapper

    @property
    def compiled(self) -> bool:
        return self._trainer.strategy.compiled

    @property
    def eval_compiled(self) -> bool:
        return self._trainer.strategy.eval_forward is not None

    def __getattr__(self, name: str) -> Any:  # only reached for names the view does not have
        raise AttributeError(
            f"TrainerView has no attribute {name!r}; hooks see step, epoch, total_steps, steps_per_epoch, "
            "config, model, optimizer, last_eval, run_dir, rank, world_size, is_main, strategy, wrapper, "
            "compiled and eval_compiled"
        )
