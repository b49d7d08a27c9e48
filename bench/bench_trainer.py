"""Trainer overhead and DDP scaling.

1. Samples/s of `mmzoo train`'s loop (the real Trainer: sampler, seeded collation, accounting,
   logging, progress, signal checks, LR schedule) against a hand-written plain PyTorch loop on the
   same model, data, batch and optimizer, in lockstep in the same run: the plain loop takes one step
   inside each of the trainer's per-step hooks, so both see the same machine at the same moment. Each
   iteration after a warm-up is timed (data, step and bookkeeping; not the trainer's start-up and final
   save) in CPU time of this one-thread process, and the median iterations are compared: a busy shared
   machine disturbs some iterations, and wall time far more than CPU time. glibc's malloc thresholds
   are fixed for both, as ``mmzoo train`` fixes them.
2. The optimizer step with torch's fused AdamW kernel (``optim.fused: auto`` picks it wherever torch
   has one) against the default multi-tensor (foreach) one, on the same parameters and gradients.
3. Global samples/s of `mmzoo train --nproc 2` (two gloo ranks, same per-rank batch) against one
   process on the av-digits model (compute-bound, so the figure shows scaling rather than gloo's
   latency), both read from the runs' own metrics.jsonl, in alternation.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from common import REPO, Result, interleaved, main

import mmzoo
from mmzoo.train.config import validate_config
from mmzoo.train.distributed import DistContext
from mmzoo.train.metrics import read_metrics
from mmzoo.train.trainer import Trainer
from mmzoo.train.view import TrainerView

SMALL = {
    "encoders": {
        "image": {"type": "cnn", "in_channels": 1, "image_size": 8, "channels": [16], "output_dim": 32},
        "vector": {"type": "mlp", "in_dim": 64, "hidden_dims": [64], "output_dim": 32},
    },
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 10},
}
TINY = {
    "encoders": {"vector": {"type": "mlp", "in_dim": 64, "hidden_dims": [8], "output_dim": 8}},
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 10},
}
CASES = {  # from "the loop is all there is" to a real model
    "sklearn-digits, tiny mlp, batch 32": (
        TINY, {"dataset": "sklearn-digits", "params": {"views": ["vector"]}}, 32, 600),
    "sklearn-digits, cnn+mlp concat, batch 32": (SMALL, {"dataset": "sklearn-digits"}, 32, 300),
    "av-digits, digits-av-concat, batch 32": ({"name": "digits-av-concat"},
                                              {"dataset": "av-digits", "params": {"limit": 1200}}, 32, 40),
}
WARMUP = 5


def _config(model: dict, data: dict, batch: int, steps: int, out: Path, **extra) -> dict:
    return {"model": model, "data": {"train": data, "batch_size": batch}, "output_dir": str(out),
            "optim": {"name": "adamw", "lr": 1e-3, "steps": steps, "schedule": "constant"},
            "save_every": 10**9, "log_every": 10, **extra}


class PlainLoop:
    """What one writes by hand: DataLoader + model.collator, AdamW, forward/backward/step, one step
    per call to :meth:`step`."""

    def __init__(self, model_config: dict, data: dict, batch: int) -> None:
        torch.manual_seed(0)
        name = model_config.get("name")
        self.model = mmzoo.create_model(name if name else model_config)
        dataset = mmzoo.create_dataset(data["dataset"], split="train", **data.get("params", {}))
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True,
                                                  collate_fn=self.model.collator,
                                                  generator=torch.Generator().manual_seed(0))
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        no_decay = [p for p in self.model.parameters() if p.ndim <= 1]
        self.optimizer = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                                           lr=1e-3, weight_decay=0.0,
                                           fused=True)  # what the trainer's optim.fused: auto picks here
        self.model.train()
        self.batches = iter(self.loader)

    def step(self) -> None:
        try:
            examples = next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            examples = next(self.batches)
        loss = self.model(examples).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.item()  # what a progress bar or a log line reads


def lockstep(model: dict, data: dict, batch: int, steps: int) -> tuple[list[float], list[float]]:
    """Run the Trainer and, inside its per-step hook, one step of the plain loop: both are timed (CPU
    seconds) side by side under the same machine conditions. Returns (trainer, plain) step times."""
    plain = PlainLoop(model, data, batch)
    trainer_times: list[float] = []
    plain_times: list[float] = []
    left = [0.0]

    def hook(view: TrainerView) -> None:
        entered = time.process_time()
        if view.step > WARMUP:
            trainer_times.append(entered - left[0])  # the trainer's iteration since the hook last returned
        plain.step()
        done = time.process_time()
        if view.step > WARMUP:
            plain_times.append(done - entered)
        left[0] = time.process_time()

    with tempfile.TemporaryDirectory() as tmp:
        config = validate_config(_config(model, data, batch, steps, Path(tmp) / "run"))
        Trainer(config, DistContext(), hooks=[hook]).run()
    return trainer_times, plain_times


def cli_throughput(model: dict, data: dict, batch: int, steps: int, nproc: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.yaml"
        path.write_text(yaml.safe_dump(_config(model, data, batch, steps, Path(tmp) / "run", log_every=2)))
        args = [sys.executable, "-m", "mmzoo", "train", str(path)]
        args += ["--nproc", str(nproc)] if nproc > 1 else []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1"}
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        records = read_metrics(Path(tmp) / "run" / "metrics.jsonl")
    windows = [r["samples_per_s"] for r in records if "samples_per_s" in r and r["step"] > WARMUP]
    return statistics.median(windows)


def optimizer_step_seconds(fused: bool, model: torch.nn.Module, repeats: int = 20) -> Callable[[], float]:
    """A function timing ``repeats`` AdamW steps (CPU seconds per step) with the given kernel."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=fused, foreach=None if fused else True)
    generator = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator) * 1e-3
    optimizer.step()  # creates the state

    def measure() -> float:
        start = time.process_time()
        for _ in range(repeats):
            optimizer.step()
        return (time.process_time() - start) / repeats

    return measure


def best_of(fns: dict, repeats: int) -> dict[str, float]:
    """Run each throughput function in turn ``repeats`` times; keep each one's best. Other processes
    on a shared machine only ever slow a run down, so the best run is the least disturbed."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            samples[key].append(fn())
    return {k: max(v) for k, v in samples.items()}


def bench(args) -> list[Result]:
    from mmzoo.train.memory import tune_malloc

    torch.set_num_threads(1)
    tune_malloc()  # as `mmzoo train` does at start (the workers fork from this process and inherit it)
    results = []
    for label, (model, data, batch, steps) in CASES.items():
        steps = max(WARMUP + 10, steps // 3) if args.quick else steps
        trainer_times: list[float] = []
        plain_times: list[float] = []
        for _ in range(2 if args.quick else 4):
            gc.collect()
            t, p = lockstep(model, data, batch, steps)
            trainer_times += t
            plain_times += p
        step = {"trainer": statistics.median(trainer_times), "plain": statistics.median(plain_times)}
        overhead = (step["trainer"] - step["plain"]) * 1e6
        results.append(Result("trainer", f"loop vs plain PyTorch ({label})", batch / step["trainer"],
                              batch / step["plain"], "samples/s", ">= 0.97",
                              note=f"1 thread, num_workers 0, lockstep, median step CPU time; "
                                   f"{overhead:+.0f} us/step over the plain loop"))
    for name in ("digits-av-gated", "digits-av-concat"):
        model = mmzoo.create_model(name)
        seconds = interleaved({"fused": optimizer_step_seconds(True, model),
                               "foreach": optimizer_step_seconds(False, model)}, 3 if args.quick else 9)
        count = sum(p.numel() for p in model.parameters())
        results.append(Result("trainer", f"fused vs foreach AdamW step ({name})", seconds["fused"] * 1e3,
                              seconds["foreach"] * 1e3, "ms/step", "<= 1.0",
                              note=f"{count / 1e6:.2f} M parameters, 1 thread, CPU time; optim.fused: auto"))
    model, data, batch, _ = CASES["av-digits, digits-av-concat, batch 32"]
    steps = 16 if args.quick else 40
    speeds = best_of({
        "two": lambda: cli_throughput(model, data, batch, steps, 2),
        "one": lambda: cli_throughput(model, data, batch, steps, 1),
    }, 1 if args.quick else 3)
    load = os.getloadavg()[0]
    results.append(Result("trainer", "--nproc 2 vs 1 process (av-digits, global samples/s)", speeds["two"],
                          speeds["one"], "samples/s",
                          note=f"{os.cpu_count()} cores, 1 thread per process, batch 32 per rank, wall "
                               f"clock, load average {load:.1f} before; ideal 2.0 on idle cores"))
    return results


if __name__ == "__main__":
    main(bench, __doc__)
