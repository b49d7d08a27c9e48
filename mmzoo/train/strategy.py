"""Training strategies: how the ranks of a job share the model (``strategy:`` in run.yaml).

A :class:`Strategy` owns everything distribution-specific about the model, so the training loop is the
same for all of them. The trainer calls, in this order:

0. :meth:`~Strategy.build_model`: the model as this rank needs it (whole, or a meta-device skeleton
   that ``prepare`` materialises);
1. :meth:`~Strategy.prepare` with the built model (on this rank's device, channels-last and frozen
   parts applied), before the optimizer exists; it returns the module whose parameters the optimizer
   updates (a sharding strategy shards here);
2. :meth:`~Strategy.load_checkpoint` when resuming: model and optimizer state restored, the trainer's
   own plain state returned;
3. :meth:`~Strategy.wrap`: the head is told the distributed context, and :attr:`~Strategy.train_step`
   (what a training batch goes through; it returns the loss) and :attr:`~Strategy.eval_forward` are built;
4. per optimizer step, :meth:`~Strategy.no_sync` around every micro-batch but the last;
5. :meth:`~Strategy.save_checkpoint` (a collective) and, at the end, :meth:`~Strategy.final_model`
   (a collective: the consolidated model on rank 0) and :meth:`~Strategy.close`.

The checkpoint format belongs to the strategy: ``single`` and ``ddp`` keep full replicas, so rank 0
writes ``model.safetensors`` and puts the optimizer state into ``trainer_state.pt``; ``fsdp`` writes a
sharded checkpoint (``sharded/``, see :mod:`mmzoo.train.sharded`); every strategy reads both formats,
and records its name in ``checkpoint.json``. The trainer's own state (step, position in the epoch, RNG
states of every rank, schedule, best checkpoint) is plain data every rank reads itself on resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmzoo.errors import ConfigError, StorageError
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import TrainConfig
from mmzoo.train.distributed import DistContext
from mmzoo.train.parallel import LossOnly, compile_module, describe, unused_parameters, wrap_ddp
from mmzoo.train.precision import Precision

_NO_CONTEXT = contextlib.nullcontext()

TrainStep = Callable[[Any], "torch.Tensor | None"]


class Strategy:
    """Base class: one process's view of the job's model; subclasses build the training step.

    The base keeps the model whole on every rank (full state dicts, rank 0 writes them), which
    ``single`` and ``ddp`` share; a sharding strategy overrides the state methods.
    """

    name: ClassVar[str]
    needs_process_group: ClassVar[bool] = False
    """Whether the strategy needs a torch.distributed process group even in a world of one."""
    collective_forward: ClassVar[bool] = False
    """Whether every forward is a collective (a sharded model gathers its parameters), so that every rank
    must run as many as the others, in evaluation too."""
    grad_scaler: ClassVar[type | None] = None
    """The fp16 loss scaler's class when the strategy needs its own (None: ``torch.amp.GradScaler``)."""

    def __init__(self, config: TrainConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.model: nn.Module | None = None
        self.frozen: list[nn.Module] = []
        self.train_step: TrainStep | None = None
        self.eval_forward: Callable[[Any], Any] | None = None
        self.wrapper: str | None = None
        """The module class the training step runs through (``"DistributedDataParallel"``), if any."""

    @property
    def compiled(self) -> bool:
        """Whether the training step runs through ``torch.compile``."""
        return self.config.compile is not None

    # --- setup ----------------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        """The configured model, seeded by the caller, on this rank's device."""
        return self.config.model.build().to(self.ctx.device)

    def prepare(self, model: nn.Module, frozen: list[nn.Module]) -> nn.Module:
        """Take the built model before the optimizer exists; return the module to optimize."""
        self.model, self.frozen = model, frozen
        return model

    def wrap(
        self, *, precision: Precision, train_mode: Callable[[], None], examples: Sequence[Any],
        note: Callable[[str], None],
    ) -> None:
        """Tell the head the distributed context, then build :attr:`train_step` and :attr:`eval_forward`.

        ``examples`` (the training set) lets a strategy probe the model, ``train_mode`` puts it in
        training mode (frozen parts stay in eval mode), ``note`` reports a line on rank 0.
        """
        self._bind_head(self.ctx.for_parts())
        self.train_step = self._build_train_step(precision, train_mode, examples, note)
        compile_eval = self.config.compile is not None and self.config.compile.eval
        self.eval_forward = compile_module(self.model, self.config.compile) if compile_eval else None

    def _build_train_step(
        self, precision: Precision, train_mode: Callable[[], None], examples: Sequence[Any],
        note: Callable[[str], None],
    ) -> TrainStep:
        raise NotImplementedError

    def no_sync(self) -> contextlib.AbstractContextManager:
        """Context for a micro-batch whose gradients are accumulated locally, not yet synchronised."""
        return _NO_CONTEXT

    def optimizer_step(self) -> contextlib.AbstractContextManager:
        """Context for gradient clipping and the optimizer step, once the step's gradients are in."""
        return _NO_CONTEXT

    def close(self) -> None:
        """Untie the head from the job (its process group is about to go)."""
        self._bind_head(None)

    def _bind_head(self, context: Any) -> None:
        bind = getattr(getattr(self.model, "head", None), "bind_distributed", None)
        if callable(bind):
            bind(context)

    # --- state ----------------------------------------------------------------------------------

    def save_checkpoint(
        self,
        manager: ckpt.CheckpointManager,
        step: int,
        state: dict[str, Any],
        optimizer: torch.optim.Optimizer,
        *,
        info: dict[str, Any],
        keep: set[int],
    ) -> Path:
        """Write checkpoint ``step`` (model, optimizer and the trainer's ``state``); a collective that
        returns the checkpoint's path on every rank."""
        path, failed = None, None
        if self.ctx.is_main:
            state = {**state, "optimizer": optimizer.state_dict()}
            try:
                path = manager.save(step, state, ckpt.model_writer(self.model, step), info=info, keep=keep)
            except StorageError as exc:  # a full disk: every rank stops with the message, none waits
                failed = str(exc)
        path, failed = self.ctx.broadcast_object((path, failed))
        if failed:
            raise StorageError(failed)
        return path

    def load_checkpoint(self, path: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Restore model and optimizer from checkpoint ``path`` (every rank reads it itself, so no rank
        waits for a broadcast); return the trainer's state stored with them."""
        state = ckpt.load_state(path)
        if ckpt.is_sharded(path):  # written by strategy fsdp: gathered whole from every rank's shards
            from mmzoo.train.sharded import load_sharded

            load_sharded(self.model, optimizer, path)
            return state
        ckpt.load_model_weights(self.model, path)
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"resume: the optimizer state in {path} does not fit this model's trainable parameters "
                f"({exc}); were optim.freeze or optim.lr_multipliers changed?"
            ) from None
        return state

    def final_model(self) -> nn.Module | None:
        """The whole trained model on rank 0 (None on the other ranks); a collective."""
        return self.model if self.ctx.is_main else None


class SingleProcess(Strategy):
    """One process trains the whole model; nothing to synchronise."""

    name = "single"

    def _build_train_step(self, precision, train_mode, examples, note) -> TrainStep:
        if self.config.compile is None:  # a plain call: no wrapper module to go through each step
            model = self.model
            return lambda batch: model(batch).loss
        return compile_module(LossOnly(self.model), self.config.compile)


class DDPStrategy(Strategy):
    """DistributedDataParallel: a full replica per rank, gradients all-reduced while backward runs.

    With ``ddp.find_unused_parameters: auto`` one batch is probed first for trainable parameters that
    get no gradient (DDP must then be told, which costs time every step). ``compile`` compiles the
    model's loss inside DDP.
    """

    name = "ddp"
    needs_process_group = True

    def __init__(self, config: TrainConfig, ctx: DistContext) -> None:
        super().__init__(config, ctx)
        self.ddp: nn.Module | None = None

    def _build_train_step(self, precision, train_mode, examples, note) -> TrainStep:
        find_unused = self.config.ddp.find_unused_parameters
        if find_unused == "auto":
            size = min(len(examples), self.config.data.batch_size, 4)
            unused = unused_parameters(
                self.model, [examples[i] for i in range(size)], self.ctx.device, precision, train_mode
            )
            if unused:
                note(
                    f"note: trainable parameters get no gradient ({describe(unused)}); DDP runs with "
                    "ddp.find_unused_parameters (slower). Freeze them with optim.freeze to avoid it"
                )
            find_unused = bool(unused)
        module = compile_module(LossOnly(self.model), self.config.compile)
        self.ddp = wrap_ddp(module, self.ctx, self.frozen, find_unused, self.config.ddp)
        self.wrapper = "DistributedDataParallel"
        return self.ddp

    def no_sync(self) -> contextlib.AbstractContextManager:
        return self.ddp.no_sync()

    def close(self) -> None:
        super().close()
        self.ddp = self.train_step = None  # DDP holds the process group, which goes next


STRATEGIES: dict[str, type[Strategy] | str] = {
    "single": SingleProcess,
    "ddp": DDPStrategy,
    "fsdp": "mmzoo.train.fsdp:FSDPStrategy",
}
"""Strategy classes (or where to import them from) by the name ``strategy:`` takes (``auto`` resolves
to one of them)."""


def implementation(name: str) -> type[Strategy]:
    """The class of strategy ``name`` (a key of :data:`STRATEGIES`), imported when given as a path."""
    cls = STRATEGIES[name]
    if isinstance(cls, str):
        import importlib

        module, _, attribute = cls.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
    return cls


def strategy_class(config: TrainConfig, world_size: int) -> type[Strategy]:
    """The class of the strategy ``config`` asks for in a job of ``world_size`` ranks."""
    return implementation(config.strategy_for(world_size))


def create_strategy(config: TrainConfig, ctx: DistContext) -> Strategy:
    """The strategy for this process of the job ``ctx`` describes."""
    cls = strategy_class(config, ctx.world_size)
    if cls.needs_process_group and ctx.backend is None:
        raise ConfigError(
            f"strategy: '{cls.name}' needs a torch.distributed process group; start training with "
            "mmzoo.train.train() or `mmzoo train`, which create one"
        )
    return cls(config, ctx)
