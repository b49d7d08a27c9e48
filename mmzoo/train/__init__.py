"""The shared trainer: any composition, one CPU to many GPUs and nodes, driven by a YAML config.

Command line::

    mmzoo train run.yaml [--nproc N] [--set optim.lr=3e-4 ...]
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:PORT -m mmzoo train run.yaml
    mmzoo eval RUN_DIR_OR_MODEL [--data DATASET] [--split test] [--param k=v] [--json]

Python: ``mmzoo.train.train(mmzoo.train.load_config("run.yaml"))`` returns a ``TrainResult``.

``run.yaml`` (every key is checked; a mistake gets one located message with a did-you-mean)::

    model: digits-av-gated            # a registry name, hf-hub:org/repo[@rev], a directory, a YAML spec,
    # model: {name: NAME, pretrained: false, overrides: {head: {num_classes: 5}}}
    # model: {encoders: {...}, fusion: {...}, head: {...}}          # or an inline spec
    data:
      train: {dataset: av-digits, split: train, params: {}, max_examples: null}   # or just: av-digits
      eval: {dataset: av-digits, split: val}     # optional; split defaults to "test"
      batch_size: 32                  # per device (per rank) and per micro-step
      eval_batch_size: null           # default: batch_size
      num_workers: 0                  # DataLoader workers per rank (0: load in the training process)
      prefetch_factor: null
      persistent_workers: true
      shuffle: true
      drop_last: false
    optim:
      name: adamw                     # adamw | adam | sgd
      lr: 1e-3
      weight_decay: 0.01              # not applied to biases and norm weights unless decay_bias_and_norm
      betas: [0.9, 0.999]             # adam/adamw;  momentum / nesterov: sgd
      lr_multipliers: {encoders.image: 0.1}      # any part or submodule; the most specific wins
      freeze: [encoders.image]        # no gradients, and kept in eval mode (batch-norm statistics too)
      warmup_steps: 100
      schedule: cosine                # cosine | linear | constant, down to min_lr_ratio * lr
      min_lr_ratio: 0.0
      epochs: 3                       # or steps: N (exactly one of them)
      grad_accum: 1                   # micro-batches per optimizer step (DDP syncs on the last)
      clip_grad_norm: 1.0             # or null
      fused: auto                     # fused optimizer kernels: auto (wherever torch has them) | true | false
    precision: fp32                   # fp32 | bf16 (autocast) | fp16 (autocast + loss scaling)
    seed: 0
    eval_every: null                  # steps; default: each epoch end and the last step
    save_every: null                  # steps; default: each epoch end and the last step
    log_every: 10
    keep_last: 2                      # checkpoints kept, plus the best by best_metric
    best_metric: loss                 # an eval metric; best_mode min|max is guessed from the name
    output_dir: runs/my-run           # never overwritten unless resume is set
    resume: null                      # auto (latest checkpoint of output_dir, or a fresh start) | a path
    compile: false                    # true, or {backend, mode, dynamic, fullgraph, eval}: torch.compile
                                      # of the training step; eval: true compiles evaluation too
    channels_last: false              # true, or parts like [encoders.image]: NHWC conv weights
    ddp:                              # used with several ranks
      find_unused_parameters: auto    # auto probes one batch for trainable parameters without grads
      gradient_as_bucket_view: true   # gradients live in the all-reduce buckets (saves a copy)
      static_graph: false             # true when the same parameters are used every step
      bucket_cap_mb: 25
    device: auto                      # auto | cpu | cuda

The run directory holds ``config.yaml`` (resolved), ``run.json`` (world size, versions),
``metrics.jsonl``, ``curves.png``, ``checkpoints/step-NNNNNN/`` and, when training finished,
``model/`` (``save_pretrained``) ready for ``mmzoo push RUN_DIR org/repo``. Checkpoints must live on
a filesystem every node sees (every rank reads the one it resumes from). SIGTERM or Ctrl-C stops after
the current step with a checkpoint (exit status 128 + signal); ``resume: auto`` then continues to the
same parameters an uninterrupted run reaches. ``mmzoo train`` and ``mmzoo eval`` fix glibc's malloc
thresholds at start (``mmzoo.train.memory``; ``MMZOO_MALLOC_TUNING=0`` turns that off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["TrainConfig", "TrainResult", "evaluate", "load_config", "train"]

_LAZY = {
    "TrainConfig": ("mmzoo.train.config", "TrainConfig"),
    "load_config": ("mmzoo.train.config", "load_config"),
    "train": ("mmzoo.train.trainer", "train"),
    "TrainResult": ("mmzoo.train.trainer", "TrainResult"),
    "evaluate": ("mmzoo.train.evaluate", "evaluate"),
}

if TYPE_CHECKING:
    from mmzoo.train.config import TrainConfig, load_config
    from mmzoo.train.evaluate import evaluate
    from mmzoo.train.trainer import TrainResult, train


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mmzoo.train' has no attribute {name!r}")
