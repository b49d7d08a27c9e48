"""Matching a dataset's targets to a model's outputs by name.

A dataset names its targets with an optional ``labels`` attribute (see :mod:`mmzoo.data`); a model
names its outputs with ``model.labels``. Two files of the same task can number their classes
differently (a manifest's class names are sorted from the file itself, so a file holding only
"coffee" and "rocket" calls them 0 and 1), so evaluation never trusts the indices:
:func:`align_targets` re-indexes the targets through the names, and a name the model does not know
is an error. Importing this module is cheap (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmzoo.data.origin import Example
from mmzoo.errors import DatasetError, did_you_mean

_MAX_WRAPPERS = 8  # how deep dataset_labels looks through wrappers (torch Subset, RelabelledDataset...)


def dataset_labels(dataset: Any, where: str = "dataset") -> tuple[str, ...] | None:
    """The names of a dataset's targets by index (its ``labels`` attribute), looking through wrappers
    that keep the wrapped dataset as ``.dataset`` (``torch.utils.data.Subset``); None when it has none.

    A ``labels`` that is not a sequence of strings (e.g. a per-example array of numbers) is not names
    and is ignored; strings that repeat are an error, since they cannot name classes by index.
    """
    for _ in range(_MAX_WRAPPERS):
        if dataset is None:
            return None
        labels = getattr(dataset, "labels", None)
        if labels is not None:
            return _as_names(labels, where)
        dataset = getattr(dataset, "dataset", None)
    return None


def _as_names(labels: Any, where: str) -> tuple[str, ...] | None:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        return None  # e.g. a numpy array of per-example targets: not class names
    names = tuple(labels)
    if not names or not all(isinstance(n, str) for n in names):
        return None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"{where}: its 'labels' attribute names the targets by index and must not repeat a "
                           f"name; {', '.join(map(repr, repeated[:5]))} repeat ({len(names)} names)")
    return names


class RelabelledDataset:
    """A dataset whose targets are re-indexed from its own names to ``labels`` (a model's).

    A class index ``i`` becomes the index of the dataset's ``i``-th name in ``labels``; a vector with one
    value per dataset name (multi-hot, or named regression outputs) is laid out over ``labels``
    (names the dataset lacks get 0). ``labels`` and ``dataset`` (the wrapped one) are attributes.
    """

    def __init__(self, dataset: Any, positions: Sequence[int], labels: Sequence[str]) -> None:
        self.dataset = dataset
        self.positions = list(positions)
        self.labels = tuple(labels)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        example = self.dataset[index]
        if not isinstance(example, Mapping) or "target" not in example:
            return example
        relabelled = {**example, "target": self.map_target(example["target"])}
        origins = getattr(example, "origins", None)
        return Example(relabelled, origins) if origins else relabelled

    def map_target(self, target: Any) -> Any:
        """One example's target, re-indexed to ``labels``."""
        if hasattr(target, "tolist") and not isinstance(target, (int, float)):
            target = target.tolist()  # numpy or torch
        if isinstance(target, bool):
            return target
        if isinstance(target, int):
            if not 0 <= target < len(self.positions):
                raise DatasetError(f"target {target} is outside the dataset's {len(self.positions)} labels")
            return self.positions[target]
        if isinstance(target, (list, tuple)) and len(target) == len(self.positions):
            laid_out = [0.0] * len(self.labels)
            for value, position in zip(target, self.positions):
                laid_out[position] = value
            return laid_out
        return target  # a single number: named, but nothing to re-index

    def __repr__(self) -> str:
        return f"<RelabelledDataset of {self.dataset!r} onto {len(self.labels)} labels>"


def align_targets(dataset: Any, labels: Sequence[str] | None, where: str = "dataset") -> Any:
    """``dataset`` with its targets indexed by ``labels`` (a model's output names), matched by name.

    Returned unchanged when either side has no names or they already agree. A name of the dataset
    that ``labels`` lacks is a DatasetError naming it and the names the model knows.
    """
    own = dataset_labels(dataset, where)
    if labels is None or own is None or tuple(own) == tuple(labels):
        return dataset
    index = {name: i for i, name in enumerate(labels)}
    unknown = [name for name in own if name not in index]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        known = ", ".join(map(repr, labels[:20])) + (", ..." if len(labels) > 20 else "")
        raise DatasetError(
            f"{where}: the data has label(s) {shown} that the model does not know; the model's labels are "
            f"{known}.{did_you_mean(unknown[0], list(labels))} Evaluate on data of the classes the model "
            "was trained on, or train a model that has these classes"
        )
    return RelabelledDataset(dataset, [index[name] for name in own], labels)
