"""Experiment loggers: where the trainer sends its metrics besides ``metrics.jsonl``.

A run config names them in ``log_to``::

    log_to: [tensorboard]                                  # event files in RUN_DIR/tensorboard
    log_to: [{type: tensorboard, log_dir: tb}, my-logger]  # a mapping passes parameters

The core registers ``tensorboard`` (``torch.utils.tensorboard``; ``pip install 'mmzoo[tensorboard]'``);
a plugin adds others (W&B, MLflow, ...) with the ``mmzoo_register_loggers`` hook::

    @mmzoo.hookimpl
    def mmzoo_register_loggers(registry):
        registry.add_logger("my-logger", "my_plugin.logger:MyLogger", description="one line")

The logger contract (duck-typed, no base class needed):

- ``factory(**params)`` builds the logger; ``params`` are the other keys of its ``log_to`` entry,
  checked against the factory's signature before training starts;
- ``start(run)`` (optional) is called once, before the first record, with a :class:`RunInfo`;
- ``log(record)`` receives every record the trainer writes to ``metrics.jsonl``, in order, as a
  dict: ``step``, ``time`` (seconds of training), ``timestamp`` (ISO 8601, UTC), and either the
  training values (``epoch``, ``loss``, ``lr``, ``samples_per_s``) or, with ``split`` set
  (``"eval"``, ``"final"``), the evaluation metrics as ``eval_<name>``;
- ``close()`` (optional) is called once when the run ends, however it ends.

Loggers run on rank 0 only. A logger that raises (when built, in ``start``, ``log`` or ``close``)
is warned about once and dropped for the rest of the run; training goes on, and ``metrics.jsonl``
stays complete. ``MMZOO_STRICT_PLUGINS=1`` makes such a failure fatal instead.
:func:`mmzoo.testing.check_logger` checks a logger against this contract.

This module is the core's ``loggers`` entry point; importing it is cheap (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mmzoo

__all__ = ["LOGGERS", "RunInfo", "mmzoo_register_loggers"]

# name -> (factory, description)
LOGGERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("mmzoo.loggers.tensorboard:TensorBoardLogger",
                    "TensorBoard event files in the run directory (log_dir, default 'tensorboard')"),
}


@dataclass(frozen=True)
class RunInfo:
    """What a logger's ``start`` learns about the run.

    Attributes:
        run_dir: the run directory (loggers that write files put them here).
        name: the run directory's name, a natural run name for a tracking service.
        config: the resolved run config (``config.yaml``) as plain data.
        total_steps: optimizer steps the run trains for.
        world_size: number of ranks training.
        resumed_at_step: the step a resumed run continues from (records after it are logged again),
            or None for a fresh run.
    """

    run_dir: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    total_steps: int = 0
    world_size: int = 1
    resumed_at_step: int | None = None


@mmzoo.hookimpl
def mmzoo_register_loggers(registry) -> None:
    """Register mmzoo's builtin loggers."""
    for name, (factory, description) in LOGGERS.items():
        registry.add_logger(name, factory, description=description)
