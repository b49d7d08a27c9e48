"""The contrastive head across ranks: negatives from every rank while training, recall@k over the whole
evaluation set (2 gloo ranks through `mmzoo train --nproc 2`)."""

from __future__ import annotations

import json
import socket

import pytest
import torch

import mmzoo
from mmzoo.train.metrics import read_metrics
from tests.train.helpers import load_tensors, max_abs_diff, run_cli, toy_config, write_yaml

pytestmark = pytest.mark.distributed

PAIRS = {
    "encoders": {
        "a": {"type": "mlp", "in_dim": 8, "hidden_dims": [16], "output_dim": 16},
        "b": {"type": "mlp", "in_dim": 8, "hidden_dims": [16], "output_dim": 16},
    },
    "fusion": {"type": "project", "dim": 8},
    "head": {"type": "contrastive", "temperature": 0.2},
}
BLOBS = {
    "encoders": {
        "vec": {"type": "mlp", "in_dim": 8, "hidden_dims": [16], "output_dim": 16},
        "img": {"type": "cnn", "in_channels": 1, "channels": [8], "output_dim": 16, "image_size": 8},
    },
    "fusion": {"type": "project", "dim": 8},
    "head": {"type": "contrastive"},
}


def train_cli(tmp_path, site, name, nproc, **changes):
    config = write_yaml(tmp_path / f"{name}.yaml", toy_config(tmp_path / name, **changes))
    args = ["train", str(config)] + (["--nproc", str(nproc)] if nproc > 1 else [])
    return run_cli(args, site, tmp_path)


def losses(tmp_path, name):
    return [r["loss"] for r in read_metrics(tmp_path / name / "metrics.jsonl") if "loss" in r and "split" not in r]


@pytest.mark.parametrize(
    ("spec", "dataset"),
    [(PAIRS, "toy-pairs"), pytest.param(BLOBS, "toy-blobs", marks=pytest.mark.slow)],
    ids=["pairs", "same-class-targets"],
)
def test_two_ranks_with_batch_b_train_like_one_process_with_batch_2b(toy_site, tmp_path, spec, dataset):
    """project + contrastive, SGD: the loss of every step and the parameters after 5 steps agree to 1e-5.
    Each rank scores its own rows against both ranks' columns; the gather's backward returns every
    rank's gradient of its columns; DDP's average then gives the gradient of the global batch's loss.
    toy-blobs carries class ids as targets, which the head gathers too (same class = a match)."""
    common = {
        "model": spec,
        "optim": {"name": "sgd", "lr": 0.5, "steps": 5},
        "data": {
            "train": {"dataset": dataset, "params": {"size": 40}},
            "eval": {"dataset": dataset, "params": {"size": 13}},
            "batch_size": 4,
        },
        "best_metric": "recall@1",
    }
    one = train_cli(tmp_path, toy_site, "one", 1, **{**common, "data": {**common["data"], "batch_size": 8}})
    two = train_cli(tmp_path, toy_site, "two", 2, **common)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    expected, found = losses(tmp_path, "one"), losses(tmp_path, "two")
    assert len(expected) == len(found) == 5
    assert max(abs(a - b) for a, b in zip(expected, found, strict=True)) <= 1e-5
    a = load_tensors(tmp_path / "one" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "two" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) <= 1e-5
    # recall@k ranks all 13 evaluation examples, whatever the ranks and batches (2 ranks x batch 4 here,
    # one batch of 8 and one of 5 there)
    final_one = read_metrics(tmp_path / "one" / "metrics.jsonl")[-1]
    final_two = read_metrics(tmp_path / "two" / "metrics.jsonl")[-1]
    recall = [k for k in final_one if k.startswith("eval_") and "recall@" in k]
    assert recall and all(final_one[k] == final_two[k] for k in recall)


def test_recall_is_computed_over_the_whole_evaluation_set_not_per_batch_or_rank(toys, tmp_path):
    """9 examples on 2 ranks in batches of 2: rank 0 scores 5, rank 1 scores 4; the recall@k every rank
    reports equals retrieval among all 9 at once (within-batch retrieval, among 2, would be near 1)."""
    import torch.multiprocessing as mp

    from tests.train.dist_workers import HEAD_SPECS, head_examples

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_spawned_heads, args=(2, port, str(toys), str(tmp_path), 9, 2), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"heads-rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["contrastive"]["local_examples"] for r in ranks] == [5, 4]
    assert ranks[0]["contrastive"]["metrics"] == ranks[1]["contrastive"]["metrics"]

    fusion, head_spec = HEAD_SPECS["contrastive"]
    torch.manual_seed(0)
    from tests.train.helpers import TINY_SPEC

    model = mmzoo.create_model({"encoders": TINY_SPEC["encoders"], "fusion": fusion, "head": head_spec}).eval()
    blobs = mmzoo.create_dataset("toy-blobs", split="test", size=9)
    with torch.no_grad():
        whole = model.head.metrics(model(model.collator(head_examples("contrastive", blobs, 9))).outputs, None)
    reported = ranks[0]["contrastive"]["metrics"]
    assert {k: reported[k] for k in whole} == pytest.approx(whole, abs=1e-12)
    assert reported["recall@1"] < 0.9  # among 9, not among 2


def _spawned_heads(rank, *args):
    from tests.train.dist_workers import evaluate_every_head

    evaluate_every_head(rank, *args)
