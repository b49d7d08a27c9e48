"""The contrastive head's cross-rank loss and whole-set recall, in one process: a stand-in context plays
the other rank (the real thing, over gloo, is tests/train/test_contrastive_ranks.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from mmzoo.parts import contrastive
from mmzoo.parts.contrastive import ContrastiveHead


def embeddings(batch, dim=6, seed=0):
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


@dataclass
class OtherRanksFixed:
    """A context whose ``all_gather`` places this rank's tensor among the other ranks' tensors (fixed,
    without gradients), in rank order. ``gathers`` holds every rank's tensors for each call, in the order
    the head makes them."""

    rank: int
    gathers: list  # per call: one tensor per rank

    @property
    def world_size(self):
        return len(self.gathers[0])

    def all_gather(self, tensor):
        everyone = self.gathers.pop(0)
        return torch.cat([tensor if i == self.rank else t.detach() for i, t in enumerate(everyone)])


@pytest.mark.parametrize("with_target", [False, True])
def test_the_ranks_local_losses_average_to_the_loss_of_the_global_batch(with_target):
    """Rank r scores its rows against every rank's columns; the mean of the two ranks' losses is the
    loss one process computes on all 8 examples, with or without class ids as targets."""
    head = ContrastiveHead(6, temperature=0.1)
    head.bind_input_keys(("a", "b"))
    a, b = embeddings(8, seed=1), embeddings(8, seed=2)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3]) if with_target else None
    whole = head.loss(head({"a": a, "b": b}), target)

    halves = [slice(0, 4), slice(4, 8)]
    normal = {"a": F.normalize(a, dim=-1), "b": F.normalize(b, dim=-1)}
    losses = []
    for rank, rows in enumerate(halves):
        gathers = [[normal[key][r] for r in halves] for key in ("a", "b")]
        if with_target:
            gathers.append([target[r] for r in halves])
        head.bind_distributed(OtherRanksFixed(rank, gathers))
        head.train()
        outputs = head({"a": a[rows], "b": b[rows]})
        assert outputs.shape == (2, 4, 8)
        losses.append(head.loss(outputs, None if target is None else target[rows]))
    head.bind_distributed(None)
    assert torch.allclose((losses[0] + losses[1]) / 2, whole, atol=1e-6)


def test_evaluation_mode_and_a_world_of_one_stay_local():
    head = ContrastiveHead(6)
    head.bind_input_keys(("a", "b"))
    fused = {"a": embeddings(4), "b": embeddings(4, seed=1)}
    head.bind_distributed(OtherRanksFixed(0, [[embeddings(4), embeddings(4, seed=3)]]))
    head.eval()
    assert head(fused).shape == (4, 4)  # evaluation shards differ in size: never gathered
    head.bind_distributed(OtherRanksFixed(0, [[embeddings(4)]]))
    head.train()
    assert head(fused).shape == (4, 4)


def test_recall_from_rows_ranks_every_example_and_equals_one_batch_holding_them_all(monkeypatch):
    """Rows of 3 batches, concatenated, give what one batch of all 11 gives; scoring queries in chunks
    (here of 4 rows) changes nothing; class ids as targets count same-class partners."""
    head = ContrastiveHead(6, recall_at=(1, 3))
    head.bind_input_keys(("a", "b"))
    a, b = embeddings(11, seed=4), embeddings(11, seed=5)
    a[3] = b[7] * 2  # a pair that is not a partner pair
    for target in (None, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2])):
        head.eval()
        whole = head.metrics(head({"a": a, "b": b}), target)
        parts = [slice(0, 4), slice(4, 6), slice(6, 11)]
        rows = [head.metric_rows({"a": a[p], "b": b[p]}, None, None if target is None else target[p]) for p in parts]
        joined = {name: torch.cat([r[name] for r in rows]) for name in rows[0]}
        assert head.metrics_from_rows(joined) == pytest.approx(whole, abs=1e-12)
        monkeypatch.setattr(contrastive, "_QUERY_CHUNK", 4)
        assert head.metrics_from_rows(joined) == pytest.approx(whole, abs=1e-12)
        monkeypatch.undo()
    assert set(whole) == {f"{d}recall@{k}" for d in ("", "a_to_b_", "b_to_a_") for k in (1, 3)}
