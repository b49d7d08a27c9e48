"""Functions run in spawned ranks by the distributed tests (importable by module name)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def evaluate_rank(rank: int, world: int, port: int, site: str, out: str, size: int, batch: int) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    sys.path.insert(0, site)
    import torch

    import mmzoo
    from mmzoo.train.data import eval_loader
    from mmzoo.train.distributed import setup_distributed
    from mmzoo.train.evaluate import evaluate
    from tests.train.helpers import TINY_SPEC

    torch.set_num_threads(1)
    ctx = setup_distributed("cpu")
    try:
        torch.manual_seed(0)
        model = mmzoo.create_model(TINY_SPEC)
        dataset = mmzoo.create_dataset("toy-blobs", split="test", size=size)
        loader = eval_loader(
            dataset,
            model.collator,
            batch_size=batch,
            rank=ctx.rank,
            world_size=ctx.world_size,
            seed=0,
            num_workers=0,
            prefetch_factor=None,
            persistent_workers=False,
            pin_memory=False,
        )
        local = sum(n for n, _ in loader)
        metrics = evaluate(model, loader, ctx)
        Path(out, f"rank{rank}.json").write_text(json.dumps({"metrics": metrics, "local_examples": local}))
    finally:
        ctx.close()


HEAD_SPECS = {
    "classification": ({"type": "concat"}, {"type": "classification", "num_classes": 3}),
    "multilabel": ({"type": "concat"}, {"type": "multilabel", "num_labels": 3}),
    "regression": ({"type": "concat"}, {"type": "regression", "num_outputs": 1}),
    "contrastive": ({"type": "project", "dim": 8}, {"type": "contrastive"}),
}


def head_examples(head: str, dataset, size: int) -> list:
    """``size`` toy-blobs examples with the target each builtin head takes (none for contrastive)."""
    import numpy as np

    examples = []
    for index in range(size):
        example = dict(dataset[index])
        target = example.pop("target")
        if head == "classification":
            example["target"] = target
        elif head == "multilabel":
            example["target"] = np.eye(3, dtype=np.float32)[target]
        elif head == "regression":
            example["target"] = float(target)
        examples.append(example)
    return examples


def evaluate_every_head(
    rank: int, world: int, port: int, site: str, out: str, size: int, batch: int = 4
) -> None:
    """Evaluate a fresh model with each builtin head on ``size`` examples split over the ranks, in
    batches of ``batch``."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    sys.path.insert(0, site)
    import torch

    import mmzoo
    from mmzoo.train.data import eval_loader
    from mmzoo.train.distributed import setup_distributed
    from mmzoo.train.evaluate import evaluate
    from tests.train.helpers import TINY_SPEC

    torch.set_num_threads(1)
    ctx = setup_distributed("cpu")
    results = {}
    try:
        blobs = mmzoo.create_dataset("toy-blobs", split="test", size=size)
        for head, (fusion, head_spec) in HEAD_SPECS.items():
            torch.manual_seed(0)
            model = mmzoo.create_model({"encoders": TINY_SPEC["encoders"], "fusion": fusion, "head": head_spec})
            loader = eval_loader(
                head_examples(head, blobs, size), model.collator, batch_size=batch, rank=ctx.rank,
                world_size=ctx.world_size, seed=0, num_workers=0, prefetch_factor=None, persistent_workers=False,
                pin_memory=False,
            )
            local = sum(n for n, _ in loader)
            results[head] = {"metrics": evaluate(model, loader, ctx), "local_examples": local}
        Path(out, f"heads-rank{rank}.json").write_text(json.dumps(results))
    finally:
        ctx.close()
