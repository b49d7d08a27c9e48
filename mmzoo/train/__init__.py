"""The shared trainer: any composition, one CPU to many GPUs and nodes, driven by a YAML config.

Command line::

    mmzoo train run.yaml [--nproc N] [--set optim.lr=3e-4 ...]
    mmzoo train --print-config > run.yaml
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:PORT -m mmzoo train run.yaml
    mmzoo eval RUN_DIR_OR_MODEL [--data DATASET] [--split test] [--param k=v] [--json]

Python: ``mmzoo.train.train(mmzoo.train.load_config("run.yaml"))`` returns a ``TrainResult``.

``run.yaml`` names the model, the data, the optimisation and the run directory; every key is checked
and a mistake gets one located message with a did-you-mean. ``mmzoo train --print-config`` prints the
reference of every key (default, allowed values, what it does), generated from the config schema
(:data:`mmzoo.train.config.SCHEMA`); that output is itself a valid ``run.yaml`` to start from.
``strategy`` picks how ranks share the model (``single``, ``ddp``, ``fsdp``; see :mod:`mmzoo.train.strategy`
and :mod:`mmzoo.train.fsdp`).

The run directory (read it with :class:`mmzoo.train.rundir.RunDir`) holds ``config.yaml`` (resolved),
``run.json`` (world size, strategy, versions), ``metrics.jsonl``, ``curves.png``,
``checkpoints/step-NNNNNN/`` and, when training finished, ``model/`` (``save_pretrained``) ready for
``mmzoo push RUN_DIR org/repo``. Checkpoints must live on a filesystem every node sees (every rank
reads the one it resumes from). SIGTERM or Ctrl-C stops after the current step with a checkpoint
(exit status 128 + signal); ``resume: auto`` then continues to the same parameters an uninterrupted
run reaches. ``mmzoo train`` and ``mmzoo eval`` fix glibc's malloc thresholds at start
(``mmzoo.train.memory``; ``MMZOO_MALLOC_TUNING=0`` turns that off).

Hooks (``train(config, hooks=[...])``) are called after every optimizer step with a
:class:`~mmzoo.train.view.TrainerView`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["RunDir", "Strategy", "TrainConfig", "TrainResult", "TrainerView", "evaluate", "load_config", "train"]

_LAZY = {
    "TrainConfig": ("mmzoo.train.config", "TrainConfig"),
    "load_config": ("mmzoo.train.config", "load_config"),
    "train": ("mmzoo.train.trainer", "train"),
    "TrainResult": ("mmzoo.train.trainer", "TrainResult"),
    "evaluate": ("mmzoo.train.evaluate", "evaluate"),
    "RunDir": ("mmzoo.train.rundir", "RunDir"),
    "Strategy": ("mmzoo.train.strategy", "Strategy"),
    "TrainerView": ("mmzoo.train.view", "TrainerView"),
}

if TYPE_CHECKING:
    from mmzoo.train.config import TrainConfig, load_config
    from mmzoo.train.evaluate import evaluate
    from mmzoo.train.rundir import RunDir
    from mmzoo.train.strategy import Strategy
    from mmzoo.train.trainer import TrainResult, train
    from mmzoo.train.view import TrainerView


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mmzoo.train' has no attribute {name!r}")
