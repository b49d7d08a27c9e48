"""Model wrapping for the loop: channels-last, torch.compile, DDP, and detecting trainable parameters
without grads."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mmzoo.errors import ConfigError
from mmzoo.train.config import CompileConfig, DDPConfig
from mmzoo.train.data import move_to_device, preserved_rng
from mmzoo.train.distributed import DistContext
from mmzoo.train.precision import Precision


class LossOnly(nn.Module):
    """``model(batch).loss``: what DDP wraps, so it sees the loss tensor (a ``ModelOutput`` dataclass
    would hide the outputs from DDP's search for unused parameters)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> torch.Tensor | None:
        return self.model(batch).loss


def apply_channels_last(model: nn.Module, setting: bool | list[str]) -> None:
    """Store the 4-d (convolution) weights of the whole model (``true``) or of the named parts in
    channels-last memory format. Values are unchanged, only their layout: convolutions then run NHWC
    kernels (faster on GPUs with tensor cores and on many CPUs) and their outputs stay channels-last."""
    from mmzoo.train.optim import check_part_name

    if setting is False or setting == []:
        return
    names = [""] if setting is True else list(setting)
    modules = dict(model.named_modules())
    for index, name in enumerate(names):
        if name:
            check_part_name(model, name, f"channels_last[{index}]")
    for name in names:
        modules[name].to(memory_format=torch.channels_last)


def compile_module(module: nn.Module, config: CompileConfig | None) -> nn.Module:
    """``torch.compile(module)`` as configured, or ``module`` itself (parameters are shared, so names
    in checkpoints stay as they are). The trainer compiles the training step; evaluation runs the eager
    model unless ``compile.eval`` is set, since eval mode is another graph to compile and a smaller
    last eval batch one more."""
    if config is None:
        return module
    return torch.compile(
        module, backend=config.backend, mode=config.mode, dynamic=config.dynamic, fullgraph=config.fullgraph
    )


def unused_parameters(
    model: nn.Module,
    examples: list,
    device: torch.device,
    precision: Precision,
    train_mode: Callable[[], None],
) -> list[str]:
    """Trainable parameters that get no gradient from one forward/backward on ``examples``.

    RNG states and buffers are restored afterwards and gradients cleared: the run is unchanged.
    """
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [device.index] if device.type == "cuda" else []
    with preserved_rng(), torch.random.fork_rng(devices=devices):
        batch = move_to_device(model.collator(examples), device)
        train_mode()
        with precision.autocast():
            loss = model(batch).loss
        if loss is None:
            raise ConfigError(
                "model: the model returned no loss for a training batch; the training data needs a "
                "'target' for this head"
            )
        loss.float().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])
    return unused


def wrap_ddp(
    module: nn.Module, ctx: DistContext, frozen: list[nn.Module], find_unused: bool, config: DDPConfig
) -> nn.Module:
    """``DistributedDataParallel(module)`` on this rank's device, with the configured options.

    Buffers of trainable parts (batch-norm statistics) are synced from rank 0 at each forward; frozen
    parts stay in eval mode, so theirs never change and need no traffic.
    """
    from torch.nn.parallel import DistributedDataParallel

    frozen_ids = {id(m) for part in frozen for m in part.modules()}
    live_buffers = any(
        True for m in module.modules() if id(m) not in frozen_ids for _ in m.buffers(recurse=False)
    )
    sync = (
        "forward_sync_buffers"
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        else "broadcast_buffers"
    )
    return DistributedDataParallel(
        module,
        device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
        find_unused_parameters=find_unused,
        gradient_as_bucket_view=config.gradient_as_bucket_view,
        static_graph=config.static_graph,
        bucket_cap_mb=config.bucket_cap_mb,
        **{sync: live_buffers},
    )


def describe(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
