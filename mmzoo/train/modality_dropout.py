"""Modality dropout: training examples lose inputs at random, so a model learns to work with any subset.

``data.modality_dropout: {audio: 0.3, image: 0.1}`` drops each example's audio with probability 0.3
and its image with 0.1, independently, before the batch is preprocessed (a dropped input is missing,
as if the example never had it; see :mod:`mmzoo.missing`). An example never loses its last input:
when the draws would take every input it has, one of them, chosen at random, is kept.

The draws come from a generator seeded with the batch's seed (:func:`mmzoo.train.data.batch_seed`:
the run's seed, the epoch and the batch's first index), never from the global RNG streams: the same
examples lose the same inputs whatever the number of workers or ranks, and after a resume. Only the
training loader applies it; evaluation always sees the data as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmzoo.errors import ConfigError, did_you_mean
from mmzoo.missing import is_missing

STREAM = 0x6D6F64  # separates these draws from any other use of a batch seed


class ModalityDropout:
    """Drops inputs of examples at the configured rates (see the module docstring). Picklable."""

    def __init__(self, rates: Mapping[str, float], input_keys: Sequence[str], *, fusion: Any = None,
                 where: str = "data.modality_dropout") -> None:
        keys = list(input_keys)
        for key, rate in rates.items():
            if key not in keys:
                raise ConfigError(f"{where}.{key}: not an input of the model, whose encoders read "
                                  f"{', '.join(keys)}.{did_you_mean(key, keys)}")
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"{where}.{key}: a probability in [0, 1) is needed, got {rate!r}")
        if fusion is not None and not getattr(fusion, "handles_missing", False):
            name = getattr(fusion, "part_name", "") or type(fusion).__name__
            raise ConfigError(f"{where}: the model's fusion '{name}' does not handle missing inputs "
                              "(handles_missing), so inputs cannot be dropped; use a fusion that does")
        self.rates = {key: float(rate) for key, rate in rates.items() if rate > 0}
        self.input_keys = keys

    def __bool__(self) -> bool:
        return bool(self.rates)

    def __call__(self, examples: Sequence[Mapping[str, Any]], seed: int) -> list[Mapping[str, Any]]:
        """The examples with the drawn inputs set to ``None`` (copies; the dataset's items are untouched)."""
        rng = np.random.default_rng([seed % 2**63, STREAM])
        out: list[Mapping[str, Any]] = []
        for example in examples:
            draws = rng.random(len(self.rates))  # one draw per rate and example, whatever the example holds
            dropped = [k for k, u in zip(self.rates, draws) if u < self.rates[k] and not is_missing(example, k)]
            if not dropped:
                out.append(example)
                continue
            has = [k for k in self.input_keys if not is_missing(example, k)]
            if len(dropped) == len(has):
                dropped.pop(int(rng.integers(len(dropped))))
            out.append({**example, **dict.fromkeys(dropped)})
        return out
