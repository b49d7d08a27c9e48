"""Sharded checkpoints with ``torch.distributed.checkpoint`` (DCP), and moving training state between the
whole format (``model.safetensors`` + the optimizer's state dict) and the sharded one.

A sharded checkpoint keeps the model and the optimizer under ``sharded/`` in DCP's layout: every rank
writes the shards it holds (``__RANK_0.distcp``) and rank 0 the ``.metadata`` that maps each tensor's
name and global shape to the pieces. State is named by parameter path (``encoders.image.proj.weight``),
never by position or rank, so DCP reads it back into any layout: another world size, the whole model
of ``single`` or ``ddp``, or one process with no process group at all (``mmzoo eval CHECKPOINT``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmzoo.errors import ConfigError, WeightsError
from mmzoo.train.rundir import CHECKPOINT_SHARDED, CHECKPOINT_WEIGHTS


def write_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Every rank writes its shards of the model and the optimizer state into ``directory/sharded``
    (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=directory / CHECKPOINT_SHARDED)


def load_sharded_model(model: nn.Module, path: Path) -> None:
    """Fill ``model`` (whole or sharded) from checkpoint ``path``'s sharded model state."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    state = {"model": get_model_state_dict(model)}
    _read(state, path, "model", lambda exc: WeightsError(
        f"resume: checkpoint {path} does not match the configured model ({exc}); was `model` changed since "
        "the run started?"
    ))
    set_model_state_dict(model, state["model"])


def load_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Fill ``model`` and ``optimizer`` (whole or sharded) from checkpoint ``path``'s sharded state."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    load_sharded_model(model, path)
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    _read(state, path, "optimizer", lambda exc: _optimizer_mismatch(path, exc))
    try:
        set_optimizer_state_dict(model, optimizer, state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise _optimizer_mismatch(path, exc) from None


def load_whole(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path, optimizer_state: dict) -> None:
    """Fill a sharded ``model`` and its ``optimizer`` from a whole checkpoint (``model.safetensors`` and
    ``optimizer_state``, the optimizer's own state dict): every rank reads the file and keeps its shards."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    whole = StateDictOptions(full_state_dict=True)
    try:
        set_model_state_dict(model, load_file(str(path / CHECKPOINT_WEIGHTS)), options=whole)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise WeightsError(f"resume: cannot load {path / CHECKPOINT_WEIGHTS} into the model ({exc})") from None
    try:
        set_optimizer_state_dict(model, optimizer, optimizer_by_name(optimizer_state, path), options=whole)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise _optimizer_mismatch(path, exc) from None


def optimizer_by_name(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """An optimizer state dict keyed by position (``optimizer.state_dict()``) keyed by parameter path
    instead, as DCP's state-dict functions take it; the trainer's parameter groups record the paths."""
    groups = state["param_groups"]
    if not all("param_names" in group for group in groups):
        raise ConfigError(
            f"resume: the optimizer state in {path} does not name its parameters (written by an older "
            "mmzoo); resume it with strategy single or ddp"
        )
    names = {index: name for group in groups for index, name in zip(group["params"], group["param_names"], strict=True)}
    return {
        "state": {names[index]: value for index, value in state["state"].items()},
        "param_groups": [{**group, "params": list(group["param_names"])} for group in groups],
    }


def _read(state: dict[str, Any], path: Path, what: str, error: Any) -> None:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    alone = not (dist.is_available() and dist.is_initialized())  # one process reads every rank's shards
    try:
        with warnings.catch_warnings():  # DCP's note that it reads in one process: that is the intent here
            warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
            dcp.load(state, checkpoint_id=path / CHECKPOINT_SHARDED, no_dist=alone)
    except (CheckpointException, RuntimeError, KeyError, ValueError) as exc:
        raise error(_first_line(exc)) from None


def _optimizer_mismatch(path: Path, exc: Any) -> ConfigError:
    return ConfigError(
        f"resume: the optimizer state in {path} does not fit this model's trainable parameters "
        f"({_first_line(exc)}); were optim.freeze or optim.lr_multipliers changed?"
    )


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
