"""A real plugin distribution (entry point + hooks) that registers small synthetic datasets, a few parts
and experiment loggers for the trainer tests. Its sources are written into a temporary site directory by the
fixtures."""

HOOKS = """
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_dataset("toy-blobs", "mmzoo_train_toys_data:ToyBlobs",
                         description="synthetic vector + 8x8 image classification (trainer tests)")
    registry.add_dataset("toy-pairs", "mmzoo_train_toys_data:ToyPairs",
                         description="synthetic vector pairs for contrastive training (trainer tests)")
    registry.add_encoder("toy-vec-spare", "mmzoo_train_toys_parts:SpareVectorEncoder", modality="vector",
                         description="a vector encoder with a trainable layer its forward never uses")
    registry.add_encoder("toy-vec-jitter", "mmzoo_train_toys_parts:JitterVectorEncoder", modality="vector",
                         description="a vector encoder whose preprocess adds random noise (augmentation)")
    registry.add_encoder("toy-vec-fixed", "mmzoo_train_toys_parts:FixedVectorEncoder", modality="vector",
                         description="a vector encoder built without trainable parameters (feature cache tests)")
    registry.add_head("toy-global-cls", "mmzoo_train_toys_parts:GlobalBatchHead",
                      description="classification whose training loss spans every rank's batch")


@mmzoo.hookimpl
def mmzoo_register_loggers(registry):
    registry.add_logger("toy-recorder", "mmzoo_train_toys_loggers:Recorder",
                        description="appends every call it receives to a JSON-lines file")
    registry.add_logger("toy-broken", "mmzoo_train_toys_loggers:Broken",
                        description="raises in the method named by fail_in")
"""

LOGGERS = """
import json
import math
import os


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Recorder:
    \"\"\"Appends ["start", run], ["log", record] and ["close"] lines (with the process id) to ``path``.\"\"\"

    def __init__(self, path):
        self.path = path

    def _write(self, *event):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps([os.getpid(), *event]) + "\\n")

    def start(self, run):
        self._write("start", {"run_dir": str(run.run_dir), "name": run.name, "total_steps": run.total_steps,
                              "world_size": run.world_size, "resumed_at_step": run.resumed_at_step,
                              "log_to": run.config["log_to"]})

    def log(self, record):
        self._write("log", {k: _plain(v) for k, v in record.items()})

    def close(self):
        self._write("close")


class Broken:
    \"\"\"Raises in ``fail_in`` ("init", "start", "log" or "close"); ``log`` from the ``after``-th record.\"\"\"

    def __init__(self, fail_in="log", after=2):
        if fail_in == "init":
            raise RuntimeError("cannot connect to the tracking server")
        self.fail_in, self.after, self.seen = fail_in, after, 0

    def start(self, run):
        if self.fail_in == "start":
            raise RuntimeError("start failed")

    def log(self, record):
        self.seen += 1
        if self.fail_in == "log" and self.seen >= self.after:
            raise ValueError(f"log failed on record {self.seen}")

    def close(self):
        if self.fail_in == "close":
            raise OSError("close failed")
"""

PARTS = """
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SpareVectorEncoder(nn.Module):
    \"\"\"Linear features of a vector; ``spare`` is trainable but unused (like an optional branch a
    config switched off): DDP must find it without being told.\"\"\"

    modality = "vector"

    def __init__(self, in_dim=8, output_dim=16):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Linear(in_dim, output_dim)
        self.spare = nn.Linear(in_dim, output_dim)

    def preprocess(self, examples):
        return torch.from_numpy(np.stack([np.asarray(e, np.float32) for e in examples]))

    def forward(self, x):
        return torch.tanh(self.net(x))


class JitterVectorEncoder(SpareVectorEncoder):
    \"\"\"Random augmentation in preprocess, drawn from the global torch, numpy and python RNGs.\"\"\"

    def preprocess(self, examples):
        import random

        batch = super().preprocess(examples)
        noise = torch.randn(batch.shape) + float(np.random.normal()) + random.random()
        return batch + 0.1 * noise


class FixedVectorEncoder(nn.Module):
    \"\"\"A fixed random projection (no trainable parameter), with optional dropout, centring over the batch
    (its output for an example depends on the batch) and a statement ``output_cacheable``.\"\"\"

    modality = "vector"

    def __init__(self, in_dim=8, output_dim=16, dropout=0.0, center=False, cacheable=None):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Linear(in_dim, output_dim).requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.center = center
        if cacheable is not None:
            self.output_cacheable = cacheable

    def preprocess(self, examples):
        return torch.from_numpy(np.stack([np.asarray(e, np.float32) for e in examples]))

    def forward(self, x):
        out = self.dropout(torch.tanh(self.net(x)))
        return out - out.mean(dim=0, keepdim=True) if self.center else out


class GlobalBatchHead(nn.Module):
    \"\"\"Classification with a loss over the whole batch (not a mean of per-example terms): cross-entropy
    plus the squared batch-mean logits. Logits and targets of all ranks are gathered through the
    distributed context the strategy binds, so the loss is the same whatever the number of ranks. Its
    metric ``bound_world_size`` reports the world size of that context (0 when none is bound).\"\"\"

    def __init__(self, input_dim, num_classes=3):
        super().__init__()
        self.linear = nn.Linear(input_dim, num_classes)
        self.context = None

    def bind_distributed(self, context):
        self.context = context

    def forward(self, fused):
        return self.linear(fused)

    def loss(self, outputs, target):
        if self.training and self.context is not None:
            outputs, target = self.context.all_gather(outputs), self.context.all_gather(target)
        return F.cross_entropy(outputs, target) + outputs.mean(dim=0).pow(2).sum()

    def metric_sums(self, outputs, target):
        count = float(outputs.shape[0])
        world = self.context.world_size if self.context is not None else 0
        return {"count": count, "world": count * world}

    def metrics_from_sums(self, sums):
        return {"bound_world_size": sums["world"] / sums["count"]}
"""

DATA = '''
import os
import signal
import time

import numpy as np


class ToyBlobs:
    """``size`` examples: {"vec": float32[dim], "img": float32[8, 8], "target": class}; the class
    moves the mean of both inputs, noise hides it partly. Deterministic per (seed, split)."""

    def __init__(self, split="train", size=64, dim=8, classes=3, noise=1.0, seed=0, blowup_index=None,
                 delay=0.0, stop_rank=None, stop_after=0):
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        self.targets = rng.integers(0, classes, size=size)
        centers = np.random.default_rng(seed + 1000).normal(size=(classes, dim)).astype(np.float32)
        self.vecs = (centers[self.targets] + noise * rng.normal(size=(size, dim))).astype(np.float32)
        pattern = np.random.default_rng(seed + 2000).normal(size=(classes, 8, 8)).astype(np.float32)
        self.imgs = np.clip(0.5 + 0.2 * pattern[self.targets] + 0.2 * noise * rng.normal(size=(size, 8, 8)),
                            0, 1).astype(np.float32)
        if blowup_index is not None:  # finite, but overflows to inf inside the first layer
            self.vecs[blowup_index] = 3e38
        self.delay = delay
        # a wedged rank, for the hang tests: rank ``stop_rank`` stops itself (SIGSTOP) at its
        # ``stop_after``-th example, as a process stuck in a driver or swapped out would stop answering
        self.stop_rank, self.stop_after, self.fetched = stop_rank, stop_after, 0

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        if self.delay:
            time.sleep(self.delay)
        self.fetched += 1
        if self.stop_rank is not None and os.environ.get("RANK") == str(self.stop_rank):
            if self.fetched == self.stop_after:
                os.kill(os.getpid(), signal.SIGSTOP)
        return {"vec": self.vecs[index], "img": self.imgs[index], "target": int(self.targets[index])}


class ToyPairs(ToyBlobs):
    """Pairs of views of the same point: {"a": vec, "b": a noisy linear map of it} (no target)."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        other = np.roll(item["vec"], 1) + 0.1
        return {"a": item["vec"], "b": other.astype(np.float32)}
'''

MODULES = {"mmzoo_train_toys": HOOKS, "mmzoo_train_toys_data": DATA, "mmzoo_train_toys_parts": PARTS,
           "mmzoo_train_toys_loggers": LOGGERS}
ENTRY_POINTS = {"toys": "mmzoo_train_toys"}
DIST = "mmzoo-train-toys"
