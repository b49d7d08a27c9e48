"""Metric reduction: weighted by example counts across batches and ranks, exact for summable heads."""

from __future__ import annotations

import json
import socket

import pytest
import torch

import mmzoo
from mmzoo.train.data import eval_loader
from mmzoo.train.distributed import DistContext
from mmzoo.train.evaluate import HeadMetrics, evaluate
from mmzoo.train.metrics import MetricSums, merge_states
from tests.train.helpers import TINY_SPEC


def test_weighted_means_count_short_batches_by_their_size():
    rank0, rank1 = MetricSums(), MetricSums()
    rank0.add({"loss": 1.0, "accuracy": 1.0}, 4)
    rank0.add({"loss": 4.0, "accuracy": 0.0}, 1)  # a short last batch
    rank1.add({"loss": 2.0, "accuracy": 0.5}, 2)
    merged = merge_states([rank0.state(), rank1.state()])
    assert merged["loss"] == pytest.approx((4 * 1 + 4 + 2 * 2) / 7)
    assert merged["accuracy"] == pytest.approx((4 + 0 + 1) / 7)


class MeanOnlyHead(torch.nn.Module):
    """A head with per-batch ``metrics`` only (no sums)."""

    def metrics(self, outputs, target):
        return {"hit_rate": float((outputs == target).float().mean())}


def test_heads_without_sums_fall_back_to_count_weighted_batch_metrics():
    head = HeadMetrics(MeanOnlyHead())
    sums = MetricSums()
    sums.add(head.add(torch.tensor([1, 1, 1]), torch.tensor([1, 1, 0])), 3)
    sums.add(head.add(torch.tensor([0]), torch.tensor([0])), 1)
    assert merge_states([sums.state()])["hit_rate"] == pytest.approx(3 / 4) and head.finish([head.sums]) == {}


@pytest.mark.distributed
def test_two_ranks_with_uneven_shards_and_short_batches_match_one_process(toys, tmp_path):
    """7 examples, batch 2, 2 ranks: rank 0 evaluates 4 (2+2), rank 1 evaluates 3 (2+1). The reduced loss
    and accuracy equal one process evaluating all 7 at once."""
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_spawned, args=(2, port, str(toys), str(tmp_path), 7, 2), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["local_examples"] for r in results] == [4, 3]
    assert results[0]["metrics"] == results[1]["metrics"]

    torch.manual_seed(0)
    model = mmzoo.create_model(TINY_SPEC)
    dataset = mmzoo.create_dataset("toy-blobs", split="test", size=7)
    loader = eval_loader(
        dataset,
        model.collator,
        batch_size=7,
        rank=0,
        world_size=1,
        seed=0,
        num_workers=0,
        prefetch_factor=None,
        persistent_workers=False,
        pin_memory=False,
    )
    single = evaluate(model, loader, DistContext())
    reduced = results[0]["metrics"]
    assert reduced["num_examples"] == single["num_examples"] == 7
    assert reduced["loss"] == pytest.approx(single["loss"], abs=1e-6)
    assert reduced["accuracy"] == single["accuracy"]
    with torch.no_grad():
        batch = model.preprocess([dataset[i] for i in range(7)])
        model.eval()
        logits = model(batch).outputs
    assert single["accuracy"] == pytest.approx(float((logits.argmax(1) == batch["target"]).float().mean()))


def _spawned(rank, *args):
    from tests.train.dist_workers import evaluate_rank

    evaluate_rank(rank, *args)


@pytest.mark.distributed
def test_a_rank_with_an_empty_evaluation_shard_gets_every_builtin_heads_metrics(toys, tmp_path):
    """One example on 2 ranks: rank 1 evaluates nothing, yet returns the same metrics as rank 0 and as
    one process (the contrastive head used to name its metrics from its first forward, so rank 1
    failed with KeyError 'a_to_b_hits@1')."""
    import torch.multiprocessing as mp

    from tests.train.dist_workers import HEAD_SPECS, head_examples

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_spawned_heads, args=(2, port, str(toys), str(tmp_path), 1), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"heads-rank{r}.json").read_text()) for r in (0, 1)]
    blobs = mmzoo.create_dataset("toy-blobs", split="test", size=1)
    for head, (fusion, head_spec) in HEAD_SPECS.items():
        assert [r[head]["local_examples"] for r in ranks] == [1, 0], head
        assert ranks[0][head]["metrics"] == ranks[1][head]["metrics"], head
        torch.manual_seed(0)
        model = mmzoo.create_model({"encoders": TINY_SPEC["encoders"], "fusion": fusion, "head": head_spec})
        batch = model.collator(head_examples(head, blobs, 1))
        single = evaluate(model, [(1, batch)], DistContext())
        assert ranks[1][head]["metrics"].keys() == single.keys(), head
        for name, value in single.items():
            assert ranks[1][head]["metrics"][name] == pytest.approx(value, abs=1e-6), (head, name)
    assert "image_to_text_recall@1" not in ranks[1]["contrastive"]["metrics"]
    assert ranks[1]["contrastive"]["metrics"]["img_to_vec_recall@1"] == 1.0  # names from the fusion's keys


def _spawned_heads(rank, *args):
    from tests.train.dist_workers import evaluate_every_head

    evaluate_every_head(rank, *args)
