"""Reading cached features in training: a dataset whose examples carry them, and the collator that
turns them into :class:`~mmzoo.EncoderOutput` batches the model takes instead of running the encoder.

``model(batch)`` uses an ``EncoderOutput`` found under an encoder's batch key as that encoder's output
(see :class:`~mmzoo.model.MultimodalModel`), so the frozen encoder is skipped, and with it the
preprocessing of its raw input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mmzoo.feature_cache.store import STORED_AS, FeatureEntry, FeatureRow
from mmzoo.outputs import EncoderOutput


class CachedFeaturesDataset:
    """``dataset`` with the values of the cached batch keys replaced by their :class:`FeatureRow`.

    When ``targets_from`` (an entry holding the targets) is given and every batch key the model reads
    is cached, the raw example is never read: an item is the rows and the target alone.
    """

    def __init__(
        self, dataset: Any, entries: Mapping[str, FeatureEntry], *, tokens: Mapping[str, bool],
        targets_from: FeatureEntry | None, read_examples: bool,
    ) -> None:
        self.dataset = dataset
        self.entries = dict(entries)
        self.tokens = {key: bool(tokens.get(key)) for key in self.entries}
        self.targets_from = targets_from
        self.read_examples = read_examples or targets_from is None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.read_examples:
            example = dict(self.dataset[index])
        else:
            example = {}
            if self.targets_from.has_targets:
                example["target"] = self.targets_from.target(index)
        for key, entry in self.entries.items():
            example[key] = entry.row(index, tokens=self.tokens[key])
        return example


class FeatureCollator:
    """``collate_fn`` for :class:`CachedFeaturesDataset` items: the model's collator on the keys that
    are not cached (and the targets), and an :class:`EncoderOutput` per cached key, its tokens padded
    to the longest example of the batch. Picklable."""

    def __init__(self, collator: Any, dtypes: Mapping[str, str]) -> None:
        self.dtypes = dict(dtypes)
        # A copy of the model's Collator without the cached keys' preprocessing.
        self.rest = copy.copy(collator)
        self.rest.preprocessors = {k: v for k, v in collator.preprocessors.items() if k not in self.dtypes}

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        cached = {key: [example[key] for example in examples] for key in self.dtypes}
        rest = [{k: v for k, v in example.items() if k not in self.dtypes} for example in examples]
        batch = self.rest(rest)
        for key, rows in cached.items():
            batch[key] = collate_rows(rows, self.dtypes[key])
        return batch


def collate_rows(rows: Sequence[FeatureRow], dtype: str) -> EncoderOutput:
    """Stack rows into ``EncoderOutput(pooled [B, D], tokens [B, T, D], mask [B, T])``; T is the batch's
    longest token row, shorter rows padded with zeros and a false mask."""
    pooled = _tensor(np.stack([row.pooled for row in rows]), dtype)
    if rows[0].tokens is None:
        return EncoderOutput(pooled)
    length = max(len(row.tokens) for row in rows)
    dim = rows[0].tokens.shape[-1]
    tokens = np.zeros((len(rows), length, dim), dtype=rows[0].tokens.dtype)
    mask = np.zeros((len(rows), length), dtype=np.bool_)
    for i, row in enumerate(rows):
        tokens[i, : len(row.tokens)] = row.tokens
        mask[i, : len(row.mask)] = row.mask
    return EncoderOutput(pooled, _tensor(tokens, dtype), torch.from_numpy(mask))


def _tensor(array: np.ndarray, dtype: str) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor.view(getattr(torch, dtype)) if dtype in STORED_AS else tensor
