"""The training config (``run.yaml``): schema, defaults, ``--set`` overrides and validation.

``load_config(path, overrides)`` returns a :class:`TrainConfig` or raises one
:class:`~mmzoo.errors.ConfigError` listing every mistake with where it is (``optim.lr: expected
float, got 'x'``). ``TrainConfig.to_dict()`` is the resolved config written to ``config.yaml``.

This module reads and validates; the keys are declared in :mod:`mmzoo.train.run_schema` and the
validated sections are the dataclasses of :mod:`mmzoo.train.config_types`, both re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmzoo.errors import ConfigError
from mmzoo.train.config_types import (
    CompileConfig,
    DataConfig,
    DDPConfig,
    DistributedConfig,
    FSDPConfig,
    ModelConfig,
    OptimConfig,
    SplitConfig,
    TrainConfig,
)
from mmzoo.train.rawconfig import apply_overrides, expand_shorthands
from mmzoo.train.run_schema import (
    BOOL_OR_AUTO,
    COMPILE,
    DATA,
    DDP,
    DISTRIBUTED,
    FSDP,
    MODEL,
    OPTIM,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    SCHEMA,
    STRATEGIES,
)

__all__ = [
    "BOOL_OR_AUTO", "COMPILE", "DATA", "DDP", "DISTRIBUTED", "FSDP", "MODEL", "OPTIM", "OPTIMIZERS",
    "PRECISIONS", "SCHEDULES", "SCHEMA", "STRATEGIES", "CompileConfig", "DataConfig", "DDPConfig",
    "DistributedConfig", "FSDPConfig", "ModelConfig", "OptimConfig", "SplitConfig", "TrainConfig",
    "load_config", "read_yaml", "validate_config", "validate_section",
]


def validate_config(raw: Any, source: str | None = None) -> TrainConfig:
    """Check a raw config mapping; raise one ConfigError listing every mistake."""
    where = source or "config"
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: expected a mapping of keys (model, data, optim, ...), got {type(raw).__name__}"
        )
    problems: list[str] = []
    config = SCHEMA.check(expand_shorthands(raw), "", problems)
    if problems:
        if len(problems) == 1:
            raise ConfigError(f"{where}: {problems[0]}")
        listing = "\n".join(f"  {p}" for p in problems)
        raise ConfigError(f"{where}: {len(problems)} problems:\n{listing}")
    config.source = source
    return config


def validate_section(name: str, raw: Any, source: str) -> Any:
    """Check only one top-level section of a config (``model``, ``data``): what reading back a run or a
    checkpoint needs, so that they stay readable when other keys of the config schema change."""
    problems: list[str] = []
    value = SCHEMA.fields[name].validator.check(expand_shorthands({name: raw})[name], name, problems)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a run config (a YAML mapping, with ``mmzoo.spec.read_yaml``); errors say which file and line."""
    from mmzoo.spec import read_yaml as read_yaml_file

    raw = read_yaml_file(path, error=ConfigError, what="config file")
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs model, data, optim and output_dir")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys (model, data, optim, ...), got {type(raw).__name__}"
        )
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path``, apply ``--set`` overrides, validate; the one entry point of the CLI."""
    raw = apply_overrides(expand_shorthands(read_yaml(path)), list(overrides or []))
    return validate_config(raw, source=str(path))
