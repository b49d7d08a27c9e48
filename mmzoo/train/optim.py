"""Freezing, per-part learning rates, the optimizer and the warmup + decay schedule.

Parts are named by module path: ``encoders.image``, ``fusion``, ``head`` (or any deeper module,
``encoders.image.backbone``). The most specific configured prefix wins for a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mmzoo.errors import ConfigError, did_you_mean
from mmzoo.train.config import OptimConfig
from mmzoo.train.rawconfig import first_line


def part_names(model: nn.Module) -> list[str]:
    """Names usable in ``freeze`` and ``lr_multipliers``: the parts first, then every submodule."""
    parts = list(model.part_modules()) if hasattr(model, "part_modules") else []
    modules = [name for name, _ in model.named_modules() if name]
    return list(dict.fromkeys(parts + modules))


def check_part_name(model: nn.Module, name: str, where: str) -> None:
    names = part_names(model)
    if name in names:
        return
    parts = list(model.part_modules()) if hasattr(model, "part_modules") else names[:8]
    hint = did_you_mean(name, names)
    raise ConfigError(f"{where}: '{name}' is not a part of this model.{hint} Parts: {', '.join(parts)}")


def _owner(param_name: str, prefixes: list[str]) -> str | None:
    """The longest prefix (at a module boundary) that contains ``param_name``."""
    best = None
    for prefix in prefixes:
        if param_name.startswith(prefix + ".") and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def apply_freeze(model: nn.Module, freeze: list[str]) -> list[nn.Module]:
    """Turn off gradients of the named parts; return their modules (kept in eval mode while training,
    so batch-norm statistics and dropout stay frozen too)."""
    modules = dict(model.named_modules())
    for index, name in enumerate(freeze):
        check_part_name(model, name, f"optim.freeze[{index}]")
    frozen = [modules[name] for name in freeze]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            f"optim.freeze: {', '.join(freeze)} leaves no trainable parameter; nothing to train"
        )
    return frozen


def param_groups(model: nn.Module, config: OptimConfig) -> list[dict]:
    """Trainable parameters grouped by (lr multiplier, weight decay); each group carries its ``lr``."""
    for name in config.lr_multipliers:
        check_part_name(model, name, f"optim.lr_multipliers.{name}")
    prefixes = list(config.lr_multipliers)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    names: dict[tuple[float, float], list[str]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        owner = _owner(name, prefixes)
        multiplier = config.lr_multipliers[owner] if owner else 1.0
        no_decay = param.ndim <= 1 and not config.decay_bias_and_norm
        decay = 0.0 if no_decay else config.weight_decay
        groups.setdefault((multiplier, decay), []).append(param)
        names.setdefault((multiplier, decay), []).append(name)
    return [
        {
            "params": params,
            "lr": config.lr * multiplier,
            "weight_decay": decay,
            "lr_multiplier": multiplier,
            "param_names": names[(multiplier, decay)],
        }
        for (multiplier, decay), params in groups.items()
    ]


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the trainable parameters, with fused kernels when
    ``optim.fused`` asks for them (``auto``: whenever torch has them for these parameters)."""
    groups = param_groups(model, config)
    if config.name == "sgd":
        cls, options = torch.optim.SGD, {
            "momentum": config.momentum or 0.0,
            "nesterov": bool(config.nesterov),
        }
    else:
        cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
        options = {"betas": tuple(config.betas), "eps": config.eps}
    options.update(lr=config.lr, weight_decay=config.weight_decay)
    if config.name == "sgd" and _sharded(groups):  # torch's DTensor has fused Adam/AdamW kernels, not SGD
        if config.fused is True:
            raise ConfigError(
                "optim.fused: torch has no fused sgd kernel for sharded parameters (strategy fsdp); set "
                "optim.fused to auto or false"
            )
        return cls(groups, **options)
    if config.fused is False:
        return cls(groups, **options)
    try:
        return cls(groups, fused=True, **options)
    except RuntimeError as exc:  # no fused kernel for these parameters' device or dtype
        if config.fused == "auto":
            return cls(groups, **options)
        devices = sorted({str(p.device) for g in groups for p in g["params"]})
        raise ConfigError(
            f"optim.fused: torch has no fused {config.name} kernel for parameters on {', '.join(devices)} "
            f"({first_line(exc)}); set optim.fused to auto or false"
        ) from None


def _sharded(groups: list[dict]) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for group in groups for p in group["params"])


def is_fused(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` runs torch's fused kernels."""
    return bool(optimizer.defaults.get("fused"))


@dataclass(frozen=True)
class Schedule:
    """lr factor at optimizer step ``s`` (0-based): linear warmup, then cosine/linear decay or constant."""

    total_steps: int
    warmup_steps: int
    kind: str
    min_ratio: float

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            shape = 1.0 - progress
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int
) -> tuple[torch.optim.lr_scheduler.LambdaLR, Callable[[int], float]]:
    schedule = Schedule(total_steps, config.warmup_steps, config.schedule, config.min_lr_ratio)
    # A plain function, not the Schedule object: LambdaLR would save a callable object's fields in its
    # state_dict and restore them on resume, overriding a schedule the config changed.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step)), schedule


def reset_base_lrs(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    config: OptimConfig,
    step: int,
) -> None:
    """After loading a checkpoint, apply the config's lr (it may have been changed for the resume)."""
    scheduler.base_lrs = []
    for group in optimizer.param_groups:
        base = config.lr * group.get("lr_multiplier", 1.0)
        group["initial_lr"] = base
        scheduler.base_lrs.append(base)
    factors = [fn(step) for fn in scheduler.lr_lambdas]
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, factors, strict=True):
        group["lr"] = base * factor
