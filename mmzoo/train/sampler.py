"""Samplers: a distributed training sampler that can start mid-epoch, and an eval sharder.

Training order is :class:`torch.utils.data.DistributedSampler`'s: a permutation seeded by
``seed + epoch``, padded to a multiple of the world size, rank ``r`` taking every ``world``-th index
from ``r``. Rank ``r``'s micro-batch ``k`` of a world of ``w`` with batch ``b`` therefore holds, across
ranks, exactly the indices of batch ``k`` of one process with batch ``w*b``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler, Sampler


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that skips the first ``skip`` indices of this rank's epoch on resume."""

    def __init__(self, dataset: Sized, *, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.skip = 0

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """Start the next iteration at ``epoch`` after ``skip`` of this rank's indices."""
        if not 0 <= skip <= self.num_samples:
            raise ValueError(f"skip must be in [0, {self.num_samples}], got {skip}")
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``w`` takes indices ``r, r+w, ...`` in order; no padding, so no example counts twice
    (ranks may get one example more or less, which the weighted metric reduction accounts for)."""

    def __init__(self, length: int, *, num_replicas: int, rank: int) -> None:
        self.length, self.num_replicas, self.rank = length, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.num_replicas))
