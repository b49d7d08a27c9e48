"""Samplers (DDP batch equivalence by construction, mid-epoch resume) and optimizer setup."""

from __future__ import annotations

import math

import pytest
import torch

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.data import KeyedBatchSampler
from mmzoo.train.optim import Schedule, apply_freeze, build_optimizer, param_groups
from mmzoo.train.sampler import ResumableDistributedSampler, ShardSampler


def _batches(sampler, batch_size):
    """(batch seed, indices) of each batch."""
    keyed = KeyedBatchSampler(sampler, batch_size, False, seed=0, epoch=lambda: sampler.epoch)
    return [(batch[0], batch[1:]) for batch in keyed]


@pytest.mark.parametrize("size", [48, 50])
def test_world_of_two_splits_each_global_batch_between_ranks(size):
    data = list(range(size))
    one = ResumableDistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=5)
    ranks = [ResumableDistributedSampler(data, num_replicas=2, rank=r, shuffle=True, seed=5) for r in (0, 1)]
    for epoch in (0, 1):
        for s in (one, *ranks):
            s.set_position(epoch)
        single = _batches(one, 8)
        split = [_batches(s, 4) for s in ranks]
        for k, (_, indices) in enumerate(single[: len(split[0])]):
            if len(indices) == 8:
                assert sorted(indices) == sorted(split[0][k][1] + split[1][k][1])
        # batch seeds depend on (seed, epoch, first index) only, never on the rank
        assert single[0][0] == split[0][0][0]
        assert len({seed for seed, _ in single}) == len(single)
    one.set_position(0)
    first = _batches(one, 8)
    one.set_position(1)
    assert _batches(one, 8) != first  # a new order each epoch


def test_position_skips_consumed_indices():
    data = list(range(30))
    sampler = ResumableDistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=0)
    sampler.set_position(3)
    full = list(sampler)
    sampler.set_position(3, skip=6)
    assert list(sampler) == full[6:] and len(sampler) == len(full) - 6
    with pytest.raises(ValueError):
        sampler.set_position(3, skip=len(full) + 1)


def test_shards_cover_every_example_once():
    shards = [list(ShardSampler(7, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(7)) and [len(s) for s in shards] == [3, 2, 2]


class Parts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoders = torch.nn.ModuleDict(
            {
                "image": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2)),
                "text": torch.nn.Linear(2, 2),
            }
        )
        self.fusion = torch.nn.Linear(4, 2)
        self.head = torch.nn.Linear(2, 1)

    def part_modules(self):
        return {
            "encoders.image": self.encoders["image"],
            "encoders.text": self.encoders["text"],
            "fusion": self.fusion,
            "head": self.head,
        }


def _optim(**optim):
    raw = {
        "model": "m",
        "data": {"train": "d", "batch_size": 1},
        "output_dir": "o",
        "optim": {"lr": 0.1, "steps": 10, **optim},
    }
    return validate_config(raw).optim


def test_freeze_and_per_part_learning_rates():
    model = Parts()
    frozen = apply_freeze(model, ["encoders.text"])
    assert frozen == [model.encoders["text"]]
    assert not any(p.requires_grad for p in model.encoders["text"].parameters())
    config = _optim(weight_decay=0.1, lr_multipliers={"encoders": 0.5, "encoders.image.0": 0.1, "head": 10})
    groups = {(g["lr_multiplier"], g["weight_decay"]): g["param_names"] for g in param_groups(model, config)}
    assert groups == {
        (0.1, 0.1): ["encoders.image.0.weight"],
        (0.1, 0.0): ["encoders.image.0.bias"],  # biases and norms get no weight decay by default
        (0.5, 0.0): ["encoders.image.1.weight", "encoders.image.1.bias"],
        (1.0, 0.1): ["fusion.weight"],
        (1.0, 0.0): ["fusion.bias"],
        (10.0, 0.1): ["head.weight"],
        (10.0, 0.0): ["head.bias"],
    }
    optimizer = build_optimizer(model, config)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx(
        [0.01, 0.01, 0.05, 0.1, 0.1, 1.0, 1.0]
    )
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 8  # frozen parameters are not optimised


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        (
            {"freeze": ["encoders.imag"]},
            "optim.freeze[0]: 'encoders.imag' is not a part of this model. Did you mean 'encoders.image'?",
        ),
        (
            {"lr_multipliers": {"fuson": 2}},
            "optim.lr_multipliers.fuson: 'fuson' is not a part of this model. Did you mean 'fusion'?",
        ),
        ({"freeze": ["encoders", "fusion", "head"]}, "leaves no trainable parameter"),
    ],
)
def test_bad_part_names(optim, message):
    model = Parts()
    config = _optim(**optim)
    with pytest.raises(ConfigError) as info:
        apply_freeze(model, config.freeze)
        param_groups(model, config)
    assert message in str(info.value)
    assert (
        "Parts: encoders.image, encoders.text, fusion, head" in str(info.value) or "no trainable" in message
    )


def test_schedules():
    cosine = Schedule(total_steps=110, warmup_steps=10, kind="cosine", min_ratio=0.1)
    assert [cosine(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert (
        cosine(10) == pytest.approx(1.0)
        and cosine(60) == pytest.approx(0.55)
        and cosine(110) == pytest.approx(0.1)
    )
    linear = Schedule(total_steps=100, warmup_steps=0, kind="linear", min_ratio=0.0)
    assert linear(50) == pytest.approx(0.5) and linear(100) == 0.0
    assert Schedule(100, 5, "constant", 0.0)(80) == 1.0
    assert all(math.isfinite(cosine(s)) for s in range(200))
