"""Datasets and DataLoaders for training and evaluation.

Batches are built in DataLoader workers by the model's ``collator`` (each encoder's ``preprocess``).
Every batch is preprocessed under a seed derived from (seed, epoch, its first index), so any
randomness in preprocessing is the same whichever worker builds the batch, and after a resume
(see :class:`SeededCollate`).
The loader yields ``(num_examples, batch)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, get_worker_info

from mmzoo.errors import ConfigError, MmzooError
from mmzoo.outputs import EncoderOutput
from mmzoo.train.config import DataConfig, SplitConfig
from mmzoo.train.sampler import ResumableDistributedSampler, ShardSampler


def build_dataset(split: SplitConfig, where: str) -> Any:
    """``mmzoo.create_dataset`` for one configured split; ``where`` (``data.train``) locates errors."""
    import mmzoo

    try:
        dataset = mmzoo.create_dataset(split.dataset, split=split.split, **split.params)
    except MmzooError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except TypeError as exc:  # a factory that does not take one of the params
        raise ConfigError(
            f"{where}.params: dataset '{split.dataset}' rejected the parameters ({exc})"
        ) from None
    size = len(dataset)
    if split.max_examples is not None and split.max_examples < size:
        dataset = Subset(dataset, range(split.max_examples))
    if len(dataset) == 0:
        raise ConfigError(f"{where}: dataset '{split.dataset}' split '{split.split}' has no examples")
    return dataset


def batch_seed(seed: int, epoch: int, first_index: int) -> int:
    """A 63-bit seed for one batch, stable across workers, ranks and resumes."""
    return (seed * 1_000_003 + epoch * 7_919 + first_index * 104_729 + 0x9E3779B97F4A7C15) % (2**63 - 1)


class KeyedDataset(Dataset):
    """Wraps a dataset for :class:`KeyedBatchSampler`'s batches ``[seed, i1, i2, ...]``, each fetched
    whole (``__getitems__``) as ``(seed, [example i1, example i2, ...])``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, keyed_batch: list[int]) -> tuple[int, list[Any]]:
        dataset = self.dataset
        return keyed_batch[0], [dataset[index] for index in keyed_batch[1:]]


class KeyedBatchSampler(Sampler[list]):
    """Groups a sampler's indices into batches ``[batch seed, index, index, ...]``."""

    def __init__(
        self, sampler: Sampler[int], batch_size: int, drop_last: bool, seed: int, epoch: Callable[[], int]
    ) -> None:
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.seed, self.epoch = seed, epoch

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch()
        batch: list[int] = []
        for index in self.sampler:
            if not batch:
                batch.append(batch_seed(self.seed, epoch, index))
            batch.append(index)
            if len(batch) > self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count = len(self.sampler)  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore the CPU torch, numpy and python RNG states on exit."""
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)


def seed_cpu_rngs(seed: int) -> None:
    torch.default_generator.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class SeededCollate:
    """``collate_fn`` for :class:`KeyedDataset` batches: runs the model's collator and returns
    ``(num_examples, batch)``. Picklable when the collator is. With ``modality_dropout`` (training only),
    examples first lose inputs at random, drawn from the batch's seed
    (:class:`~mmzoo.train.modality_dropout.ModalityDropout`).

    In a worker process the torch, numpy and python RNGs are first seeded with the batch's seed, so any
    randomness in preprocessing is the same whichever worker builds the batch, and after a resume. In
    the main process (``num_workers: 0``) preprocessing draws from the global RNG streams in order;
    checkpoints capture those, so resumes are exact there too.
    """

    def __init__(self, collator: Callable[[list[Any]], Any], modality_dropout: Callable | None = None) -> None:
        self.collator = collator
        self.modality_dropout = modality_dropout or None

    def __call__(self, keyed: tuple[int, list[Any]]) -> tuple[int, Any]:
        key, examples = keyed
        if get_worker_info() is not None:
            seed_cpu_rngs(key)
        if self.modality_dropout is not None:
            examples = self.modality_dropout(examples, key)
        return len(examples), self.collator(examples)


def worker_init(worker_id: int) -> None:
    """DataLoader worker setup. Stop signals are the main process's to handle: torchrun signals a rank's
    whole process group, a terminal's Ctrl-C reaches the foreground group, schedulers signal every
    process of a job, and a worker killed mid-step would take its rank down before the rank checkpoints.
    So the worker leaves the group and ignores SIGINT/SIGTERM; the trainer shuts its workers down itself
    (:func:`close_loader`), and a worker exits by itself when its parent dies. Seed numpy/python."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader(
    dataset: Any,
    batch_sampler: Sampler,
    collator: Callable,
    *,
    num_workers: int,
    prefetch_factor: int | None,
    persistent_workers: bool,
    pin_memory: bool,
    seed: int,
    modality_dropout: Callable | None = None,
) -> DataLoader:
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    return DataLoader(
        KeyedDataset(dataset),
        batch_sampler=batch_sampler,
        collate_fn=SeededCollate(collator, modality_dropout),
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=worker_init,
        generator=torch.Generator().manual_seed(seed),  # never draw worker seeds from the global RNG
        **kwargs,
    )


def train_loader(
    dataset: Any,
    collator: Callable,
    *,
    batch_size: int,
    rank: int,
    world_size: int,
    seed: int,
    shuffle: bool,
    drop_last: bool,
    num_workers: int,
    prefetch_factor: int | None,
    persistent_workers: bool,
    pin_memory: bool,
    modality_dropout: Callable | None = None,
) -> tuple[DataLoader, ResumableDistributedSampler]:
    """The training loader and its sampler (call ``sampler.set_position`` before each epoch); with
    ``modality_dropout``, training examples lose inputs at random (seeded per batch)."""
    sampler = ResumableDistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
    )
    batches = KeyedBatchSampler(sampler, batch_size, drop_last, seed, epoch=lambda: sampler.epoch)
    loader = _loader(
        dataset,
        batches,
        collator,
        num_workers=num_workers,
        prefetch_factor=prefetch_factor,
        persistent_workers=persistent_workers,
        pin_memory=pin_memory,
        seed=seed + 7_919 * rank,
        modality_dropout=modality_dropout,
    )
    return loader, sampler


def eval_loader(
    dataset: Any,
    collator: Callable,
    *,
    batch_size: int,
    rank: int,
    world_size: int,
    seed: int,
    num_workers: int,
    prefetch_factor: int | None,
    persistent_workers: bool,
    pin_memory: bool,
) -> DataLoader:
    """An evaluation loader over this rank's shard, in order, every example exactly once."""
    sampler = ShardSampler(len(dataset), num_replicas=world_size, rank=rank)
    batches = KeyedBatchSampler(sampler, batch_size, False, seed, epoch=lambda: 0)
    return _loader(
        dataset,
        batches,
        collator,
        num_workers=num_workers,
        prefetch_factor=prefetch_factor,
        persistent_workers=persistent_workers,
        pin_memory=pin_memory,
        seed=seed + 7_919 * rank + 1,
    )


def close_loader(loader: DataLoader | None) -> None:
    """Stop a loader's persistent worker processes now rather than at garbage collection."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
        loader._iterator = None


def move_to_device(value: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors in nested dicts/lists/tuples moved to ``device``; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, EncoderOutput):  # precomputed features (the feature cache)
        fields = (value.pooled, value.tokens, value.mask)
        return EncoderOutput(*(move_to_device(v, device, non_blocking) for v in fields))
    if isinstance(value, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple):
        moved = [move_to_device(v, device, non_blocking) for v in value]
        return type(value)(moved) if isinstance(value, tuple) and not hasattr(value, "_fields") else moved
    return value


@dataclass
class Loaders:
    """The datasets and loaders of a run, and its epoch geometry on this rank."""

    train_set: Any
    eval_set: Any | None
    train: DataLoader
    sampler: ResumableDistributedSampler
    eval: DataLoader | None
    batches_per_epoch: int


def build_loaders(
    data: DataConfig, collator: Callable, *, seed: int, rank: int, world_size: int, pin_memory: bool,
    modality_dropout: Callable | None = None,
    check: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    prepare: Callable[[Any, Any, Callable], tuple[Any, Any, Callable]] | None = None,
) -> Loaders:
    """Datasets from ``data``, the resumable training loader (with ``modality_dropout``, if any) and the
    sharded evaluation loader.

    ``check`` sees the datasets first (``{"data.train": ..., "data.eval": ... or None}``) and returns
    the ones to load (e.g. with their targets matched to the model's labels). ``prepare(train_set,
    eval_set, collator)``, when given, then returns what the loaders read instead (the feature cache's
    datasets and collator); ``Loaders`` keeps the checked datasets."""
    train_set = build_dataset(data.train, "data.train")
    eval_set = build_dataset(data.eval, "data.eval") if data.eval is not None else None
    if check is not None:
        checked = check({"data.train": train_set, "data.eval": eval_set})
        train_set, eval_set = checked["data.train"], checked["data.eval"]
    loaded_train, loaded_eval = train_set, eval_set
    if prepare is not None:
        loaded_train, loaded_eval, collator = prepare(train_set, eval_set, collator)
    common = {
        "num_workers": data.num_workers,
        "prefetch_factor": data.prefetch_factor,
        "persistent_workers": data.persistent_workers,
        "pin_memory": pin_memory,
        "rank": rank,
        "world_size": world_size,
        "seed": seed,
    }
    loader, sampler = train_loader(
        loaded_train,
        collator,
        batch_size=data.batch_size,
        shuffle=data.shuffle,
        drop_last=data.drop_last,
        modality_dropout=modality_dropout,
        **common,
    )
    evaluation = None
    if eval_set is not None:
        evaluation = eval_loader(
            loaded_eval, collator, batch_size=data.eval_batch_size or data.batch_size, **common
        )
    per_rank = sampler.num_samples
    batches = per_rank // data.batch_size if data.drop_last else math.ceil(per_rank / data.batch_size)
    if batches == 0:
        raise ConfigError(
            f"data.batch_size: {data.batch_size} is more than the {per_rank} examples each of the "
            f"{world_size} rank(s) gets per epoch, and data.drop_last is true: no batch to train on"
        )
    return Loaders(train_set, eval_set, loader, sampler, evaluation, batches)
