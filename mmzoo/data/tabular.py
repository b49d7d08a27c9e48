"""``sklearn-digits``: scikit-learn's 1,797 8x8 handwritten digits, as small, fast test data.

Two views of each digit: ``image`` (uint8 [8, 8], the 0-16 intensities scaled to 0-255) and
``vector`` (float32 [64], intensities / 16, for tabular encoders such as ``mlp``). Both views show
the same pixels: use it to exercise image + tabular pipelines quickly, not to measure fusion.

Item: ``{"image": uint8 [8, 8], "vector": float32 [64], "target": int}`` (only the requested views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmzoo.content_hash import content_digest
from mmzoo.data.base import (
    DEFAULT_FRACTIONS,
    ExampleDataset,
    check_fractions,
    check_limit,
    check_seed,
    check_split,
    dataset_factory,
    stratified_split,
)
from mmzoo.errors import DatasetError, did_you_mean

NAME = "sklearn-digits"
VIEWS = ("image", "vector")


class SklearnDigits(ExampleDataset):
    """scikit-learn's digits; parameters: ``split``, ``limit``, ``seed``, ``fractions`` (stratified)
    and ``views`` (which of "image" and "vector" each example holds)."""

    name = NAME
    num_classes = 10
    labels = tuple(str(d) for d in range(10))  # class names by target index (see mmzoo.data)

    def __init__(
        self,
        split: str = "train",
        *,
        limit: int | None = None,
        seed: int = 0,
        fractions: Mapping[str, float] | None = None,
        views: Sequence[str] = VIEWS,
    ) -> None:
        fractions = check_fractions(NAME, DEFAULT_FRACTIONS if fractions is None else fractions)
        self.split = check_split(NAME, split, list(fractions))
        self.seed = check_seed(NAME, seed)
        limit = check_limit(NAME, limit)
        if isinstance(views, str) or not isinstance(views, Sequence) or not views:
            raise DatasetError(
                f"{NAME}: views must be a non-empty list drawn from {list(VIEWS)}, not {views!r}"
            )
        for view in views:
            if view not in VIEWS:
                hint = did_you_mean(str(view), VIEWS)
                raise DatasetError(f"{NAME}: unknown view {view!r}; choose from {', '.join(VIEWS)}.{hint}")
        self.keys = tuple(dict.fromkeys(views))
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise DatasetError(f"{NAME} needs scikit-learn: pip install scikit-learn") from exc
        digits = load_digits()
        pixels = np.asarray(digits.data, np.float32)  # [1797, 64], 0..16
        labels = np.asarray(digits.target, np.int64)
        indices = stratified_split(labels, fractions, self.seed)[self.split]
        indices = indices[:limit] if limit is not None else indices
        self._pixels, self._labels = pixels[indices], labels[indices]

    def fingerprint(self) -> str:
        """What identifies the examples (for the feature cache): the split's pixels, labels and views."""
        return content_digest(NAME, self._pixels, self._labels, list(self.keys))

    def __len__(self) -> int:
        return len(self._labels)

    def _example(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {}
        if "image" in self.keys:
            image = np.clip(np.round(self._pixels[i] * 16.0), 0, 255).astype(np.uint8)
            example["image"] = image.reshape(8, 8)
        if "vector" in self.keys:
            example["vector"] = self._pixels[i] / np.float32(16.0)
        example["target"] = int(self._labels[i])
        return example


sklearn_digits = dataset_factory(NAME)(SklearnDigits)
