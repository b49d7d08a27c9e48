"""Pieces every mmzoo dataset shares: the indexable base class, split resolution and checked factories."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mmzoo.errors import DatasetError, did_you_mean
from mmzoo.params import check_params

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


class ExampleDataset:
    """A sized, indexable dataset of example dicts (works as a map-style torch DataLoader dataset).

    Subclasses set ``self.split`` and implement ``__len__`` and ``_example(i)`` for ``0 <= i < len``;
    this class handles negative indices and the ``IndexError`` that ends iteration.
    """

    name: str = "dataset"
    split: str = "train"

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _example(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self.name} indices must be integers, not {type(index).__name__}")
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(
                f"{self.name} index {index} is out of range for split '{self.split}' ({n} examples)"
            )
        return self._example(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self._example(i)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} split={self.split!r} examples={len(self)}>"


def check_split(dataset: str, split: object, available: Sequence[str]) -> str:
    """Return ``split`` if it is one of ``available``, else raise a DatasetError with close matches."""
    if not isinstance(split, str):
        raise DatasetError(f"{dataset}: split must be a string such as 'train', got {split!r}")
    if split not in available:
        choices = ", ".join(f"'{s}'" for s in available)
        hint = did_you_mean(split, available)
        raise DatasetError(f"{dataset}: unknown split '{split}'; available splits: {choices}.{hint}")
    return split


def check_fractions(dataset: str, fractions: object) -> dict[str, float]:
    """Validate a ``{split: fraction}`` mapping: positive numbers summing to 1 (within 1e-6)."""
    if not isinstance(fractions, Mapping) or not fractions:
        raise DatasetError(
            f"{dataset}: fractions must be a mapping of split name to fraction such as "
            f"{{'train': 0.8, 'val': 0.1, 'test': 0.1}}, got {fractions!r}"
        )
    out: dict[str, float] = {}
    for split, value in fractions.items():
        if not isinstance(split, str) or not split:
            raise DatasetError(f"{dataset}: fractions keys must be split names (strings), got {split!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise DatasetError(f"{dataset}: fractions['{split}'] must be a number > 0, got {value!r}")
        out[split] = float(value)
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise DatasetError(f"{dataset}: fractions must sum to 1, got {total:g} from {out}")
    return out


def _sizes(n: int, fractions: Mapping[str, float]) -> list[int]:
    # Fractions of n rounded so that they add up to n (largest remainders get the spare items).
    exact = [f * n for f in fractions.values()]
    sizes = [int(math.floor(x)) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda k: (-(exact[k] - sizes[k]), k))
    for k in by_remainder[: n - sum(sizes)]:
        sizes[k] += 1
    return sizes


def random_split(n: int, fractions: Mapping[str, float], seed: int, stream: int = 0) -> dict[str, np.ndarray]:
    """Split ``range(n)`` into disjoint index arrays, one per split, by a seeded permutation.

    Each array is in shuffled order, so its first ``k`` entries are a random subset. The same
    ``n``, fractions and seed always give the same split, on any machine; ``stream`` picks an
    independent permutation for the same seed.
    """
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5B117, stream])).permutation(n)
    out, start = {}, 0
    for name, size in zip(fractions, _sizes(n, fractions)):
        out[name] = order[start : start + size]
        start += size
    return out


def stratified_split(labels: np.ndarray, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Like :func:`random_split` but splitting each class separately, so every split keeps the class mix."""
    labels = np.asarray(labels)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    for k, cls in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == cls)
        for name, idx in random_split(len(members), fractions, seed, stream=k + 1).items():
            parts[name].append(members[idx])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57A7]))
    return {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}


def check_seed(dataset: str, seed: object) -> int:
    """Validate ``seed`` (an int >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"{dataset}: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_limit(dataset: str, limit: object) -> int | None:
    """Validate ``limit`` (None or an int >= 1)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise DatasetError(f"{dataset}: limit must be a positive integer or None, got {limit!r}")
    return int(limit)


def dataset_factory(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a dataset class or function so that its parameters are checked before it runs.

    The wrapped factory is called as ``factory(split="train", **params)``. Its parameters go through
    the same checker as ``mmzoo.create_dataset`` (:func:`mmzoo.params.check_params`): an unknown,
    missing or mistyped parameter is a :class:`~mmzoo.errors.SpecError` (with the accepted
    parameters and a close match), however the factory is called.
    """

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(factory, updated=())
        def make(split: str = "train", **params: Any) -> Any:
            check_params(factory, {"split": split, **params}, name)
            return factory(split, **params)

        return make

    return wrap


class WithoutInputs:
    """A view of a dataset whose examples lack the inputs ``keys`` (their values are ``None``): what a
    model does with a modality missing (see :mod:`mmzoo.missing`). The wrapped items are not changed."""

    def __init__(self, dataset: Any, keys: Sequence[str]) -> None:
        self.dataset = dataset
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = dict(self.dataset[index])
        example.update(dict.fromkeys(self.keys))
        return example

    def __repr__(self) -> str:
        return f"<WithoutInputs {', '.join(self.keys)} of {self.dataset!r}>"
