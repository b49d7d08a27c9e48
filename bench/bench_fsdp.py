"""FSDP against DDP on 2 CPU ranks (gloo), on a model dominated by one large encoder.

The model: a ViT-Base/16 image encoder (timm, random init, 86 M parameters, at 32 px) and MiniLM (22 M)
for text, projected and aligned by the contrastive head, trained on digit-captions with AdamW. Each
strategy trains it through the real trainer (``train()`` in two spawned ranks); the two runs alternate.

1. Per-rank memory of the training state: parameters + gradients + optimizer state, as this rank holds
   them (FSDP: its shards, padding included; DDP: a whole replica), counted from the tensors themselves
   (a gradient takes the size of its parameter's local tensor), the larger rank reported. Not counted:
   activations, and the unit FSDP gathers whole while it runs (the largest ViT block, ~7 M parameters).
2. The peak resident memory of each rank's process (ru_maxrss), rank 0 and rank 1 apart: everything the
   process ever held, activations and gloo buffers included. FSDP's rank 0 also holds the whole model
   in host memory twice: when it builds it (to send every rank its shards) and at the end (the
   consolidated ``model/``); rank 1 never does. Reported, no target.
3. Steps/s (median step after warm-up): FSDP gathers every unit's parameters in forward and again in
   backward, and reduce-scatters gradients; on CPU over gloo these copies cost more than DDP's single
   all-reduce. Reported, no target (on GPUs with NCCL they overlap with compute).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import tempfile
import time
from pathlib import Path

from common import Result, main

MODEL = {
    "encoders": {
        "image": {"type": "timm/vit_base_patch16_224", "img_size": 32},
        "text": {"type": "minilm"},
    },
    "fusion": {"type": "project", "dim": 256},
    "head": {"type": "contrastive"},
}
WARMUP = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _state_bytes(model, optimizer) -> int:
    """Bytes of this rank's parameters, gradients (one per trainable parameter, its local size) and
    optimizer state, each storage counted once."""
    import torch

    def local(t):
        return t.to_local() if hasattr(t, "to_local") else t

    seen, total = set(), 0
    tensors = [local(p) for p in model.parameters()]
    tensors += [local(v) for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    total += sum(local(p).numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return total


def _rank(rank: int, world: int, port: int, strategy: str, steps: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    import torch

    from mmzoo.train.config import validate_config
    from mmzoo.train.trainer import train

    torch.set_num_threads(1)
    times, measured = [], {}

    def hook(view) -> None:
        if view.step == WARMUP:
            measured["state_bytes"] = _state_bytes(view.model, view.optimizer)
        times.append(time.perf_counter())

    config = validate_config({
        "model": MODEL, "strategy": strategy, "output_dir": str(Path(out) / "run"),
        "data": {"train": {"dataset": "digit-captions", "max_examples": 64}, "batch_size": 4},
        "optim": {"name": "adamw", "lr": 1e-4, "steps": steps, "schedule": "constant"},
        "save_every": 10**9, "log_every": 10**9,
    })
    train(config, hooks=[hook])
    steps_s = [b - a for a, b in zip(times[WARMUP - 1 :], times[WARMUP:])]
    measured["step_seconds"] = statistics.median(steps_s)
    measured["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(out, f"rank{rank}.json").write_text(json.dumps(measured))


def run(strategy: str, steps: int) -> dict[str, float]:
    """Train with ``strategy`` on 2 ranks: the larger rank's figures, and each rank's peak memory."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix=f"bench-{strategy}-") as out:
        mp.spawn(_rank, args=(2, _free_port(), strategy, steps, out), nprocs=2, join=True)
        ranks = [json.loads(Path(out, f"rank{r}.json").read_text()) for r in (0, 1)]
    figures = {key: max(r[key] for r in ranks) for key in ranks[0]}
    figures.update({f"max_rss_bytes_rank{index}": r["max_rss_bytes"] for index, r in enumerate(ranks)})
    return figures


def bench(args) -> list[Result]:
    repeats = 1 if args.quick else 2
    steps = WARMUP + (3 if args.quick else 6)
    runs: dict[str, list[dict[str, float]]] = {"ddp": [], "fsdp": []}
    for index in range(repeats):
        for strategy in ("ddp", "fsdp") if index % 2 == 0 else ("fsdp", "ddp"):
            runs[strategy].append(run(strategy, steps))

    def median(strategy: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[strategy])

    model = "ViT-B/16 + MiniLM, 2 gloo ranks"
    return [
        Result("fsdp", f"training state per rank, fsdp vs ddp ({model})", median("fsdp", "state_bytes") / 2**20,
               median("ddp", "state_bytes") / 2**20, "MiB", "<= 0.6",
               "parameters + gradients + AdamW state held by the larger rank"),
        Result("fsdp", "peak resident memory of rank 0, fsdp vs ddp", median("fsdp", "max_rss_bytes_rank0") / 2**20,
               median("ddp", "max_rss_bytes_rank0") / 2**20, "MiB", "",
               "whole process; fsdp's rank 0 builds the whole model, and consolidates it at the end"),
        Result("fsdp", "peak resident memory of rank 1, fsdp vs ddp", median("fsdp", "max_rss_bytes_rank1") / 2**20,
               median("ddp", "max_rss_bytes_rank1") / 2**20, "MiB", "",
               "whole process; never holds the whole model under fsdp"),
        Result("fsdp", "steps/s, fsdp vs ddp", 1 / median("fsdp", "step_seconds"),
               1 / median("ddp", "step_seconds"), "steps/s", "",
               "CPU + gloo: parameters gathered per unit twice a step; slower expected"),
    ]


if __name__ == "__main__":
    main(bench, __doc__.splitlines()[0])
