"""The conformance check of a dataset: the dataset contract, and its optional ``labels`` told truly.

A dataset is sized and indexable and its items are example dicts (a raw value per batch key, and
``"target"``). When it names its targets (``labels``, see :mod:`mmzoo.data`), the names must be
distinct strings, and the targets of its first examples must fit them: a class index names one of
them, a vector has one value per name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mmzoo.data.labels import dataset_labels


def check_dataset(dataset: Any, params: Mapping[str, Any] | None = None, *, split: str = "train",
                  examples: int = 8) -> Any:
    """Check a dataset (an instance, a factory called as ``factory(split=split, **params)``, or a registered
    dataset name) on its first ``examples`` items; returns the dataset. Raises ``AssertionError`` with a
    precise message at the first broken promise."""
    dataset, label = _build(dataset, params, split)
    assert hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"), (
        f"{label}: a dataset must be sized and indexable (len(ds), ds[i])"
    )
    size = len(dataset)
    assert isinstance(size, int) and size > 0, f"{label}: len() must be a positive int, got {size!r}"
    raw = getattr(dataset, "labels", None)
    assert not (isinstance(raw, (list, tuple)) and not raw), f"{label}: labels is empty; give the names or None"
    names = dataset_labels(dataset, label)
    for index in range(min(size, examples)):
        example = dataset[index]
        assert isinstance(example, Mapping), (
            f"{label}: item {index} must be an example dict (raw values by batch key, and 'target'), got "
            f"{type(example).__name__}"
        )
        if names is not None and "target" in example:
            _check_target(example["target"], names, f"{label}: item {index}")
    return dataset


def _build(dataset: Any, params: Mapping[str, Any] | None, split: str) -> tuple[Any, str]:
    if isinstance(dataset, str):
        import mmzoo

        return mmzoo.create_dataset(dataset, split=split, **dict(params or {})), f"dataset {dataset!r}"
    if callable(dataset) and not hasattr(dataset, "__getitem__"):
        factory: Callable[..., Any] = dataset
        return factory(split=split, **dict(params or {})), getattr(factory, "__name__", repr(factory))
    return dataset, type(dataset).__name__


def _check_target(target: Any, names: tuple[str, ...], where: str) -> None:
    if hasattr(target, "tolist"):
        target = target.tolist()
    if isinstance(target, int) and not isinstance(target, bool):
        assert 0 <= target < len(names), (
            f"{where}: target {target} is not an index into the {len(names)} labels {list(names)[:10]}"
        )
    elif isinstance(target, (list, tuple)):
        assert len(target) == len(names), (
            f"{where}: a target vector must have one value per label ({len(names)}), got {len(target)}"
        )
    else:
        assert isinstance(target, float) and len(names) == 1, (
            f"{where}: target {target!r} with {len(names)} labels: a class index, or a vector of one value per "
            "label, or a single number named by a single label"
        )
