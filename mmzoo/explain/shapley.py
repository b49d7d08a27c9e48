"""Exact Shapley values over a model's inputs, computed through the missing-modality path.

The players are the model's encoder keys; the value of a subset ``S`` is the explained output of the
model when each example keeps only the inputs of ``S`` it has (the others are missing). Encoders run
once; the fusion and head run once per subset (``2^M`` for ``M`` inputs, at most
:data:`MAX_MODALITIES`). The empty subset is ``score(none)``: the fusion's ``empty_output`` when it has
one (``sum``, ``gated``, ``attention``, ``cross-attention``: what they fuse from nothing), else the
fusion run with every input absent (``concat``, ``bilinear``, ``film``: their learned absent
embeddings). Rows where a subset leaves an example no input take that same baseline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmzoo.errors import MmzooError
from mmzoo.outputs import EncoderOutput

MAX_MODALITIES = 6


def check_explainable(model: Any) -> list[str]:
    """The model's input keys, or a clear error when explanations cannot be computed for it."""
    keys = list(model.encoders)
    if len(keys) > MAX_MODALITIES:
        raise MmzooError(f"exact Shapley values over {len(keys)} inputs need 2^{len(keys)} = {2 ** len(keys)} passes "
                         f"of the fusion and head per batch; explanations support at most {MAX_MODALITIES} inputs")
    fusion = model.fusion
    name = getattr(fusion, "part_name", "") or type(fusion).__name__
    if len(keys) > 1 and not getattr(fusion, "handles_missing", False):
        raise MmzooError(f"explanations leave inputs out through the missing-modality path, but fusion '{name}' "
                         "does not handle missing inputs (handles_missing)")
    if getattr(fusion, "output_kind", "tensor") != "tensor":
        raise MmzooError(f"fusion '{name}' keeps modalities apart for a head that compares examples; explanations "
                         "need a head with one output row per example (classification, multilabel, regression)")
    return keys


def subset_name(subset: Sequence[str]) -> str:
    """``"audio+image"`` (sorted); ``""`` for the empty subset."""
    return "+".join(sorted(subset))


def _rows(features: Mapping[str, EncoderOutput], rows: Tensor) -> dict[str, EncoderOutput]:
    return {key: EncoderOutput(f.pooled[rows], None if f.tokens is None else f.tokens[rows],
                               None if f.mask is None else f.mask[rows]) for key, f in features.items()}


def _empty_outputs(model: Any, features: Mapping[str, EncoderOutput], batch: int, device: torch.device) -> Tensor:
    """The head's outputs for examples with no input at all (see the module docstring)."""
    fusion = model.fusion
    empty = getattr(fusion, "empty_output", None)
    if callable(empty):
        return model.head(empty(batch))
    nothing = {key: torch.zeros(batch, dtype=torch.bool, device=device) for key in features}
    try:
        return model.decode(features, nothing)[1]
    except MmzooError as exc:
        name = getattr(fusion, "part_name", "") or type(fusion).__name__
        raise MmzooError(f"fusion '{name}' cannot fuse an example with no input ({exc}); explanations need that "
                         "baseline: define empty_output(batch_size) on the fusion") from None


def subset_outputs(model: Any, features: Mapping[str, EncoderOutput], present: Mapping[str, Tensor],
                   keys: Sequence[str]) -> dict[frozenset, Tensor]:
    """The head's outputs ``[B, K]`` for every subset of ``keys`` (each example keeps the inputs of the
    subset it has)."""
    batch = next(iter(present.values())).shape[0]
    device = next(iter(present.values())).device
    empty = _empty_outputs(model, features, batch, device)
    out: dict[frozenset, Tensor] = {frozenset(): empty}
    for size in range(1, len(keys) + 1):
        for subset in itertools.combinations(keys, size):
            masks = {k: present[k] & (k in subset) for k in keys}
            some = torch.stack(list(masks.values()), dim=1).any(dim=1)
            outputs = empty.clone()
            if bool(some.any()):
                rows = some.nonzero().squeeze(1)
                kept = {k: m[rows] for k, m in masks.items()}
                outputs[rows] = model.decode(_rows(features, rows), kept)[1].to(outputs.dtype)
            out[frozenset(subset)] = outputs
    return out


def shapley_values(values: Mapping[frozenset, Tensor], keys: Sequence[str]) -> dict[str, Tensor]:
    """Exact Shapley values ``[B]`` of each key from the value ``[B]`` of every subset (float64).

    ``phi_i = sum over S without i of |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S))``; they sum to
    ``v(all) - v(none)``.
    """
    m = len(keys)
    phi = {}
    for key in keys:
        others = [k for k in keys if k != key]
        total = torch.zeros_like(values[frozenset()], dtype=torch.float64)
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for subset in itertools.combinations(others, size):
                base = frozenset(subset)
                total = total + weight * (values[base | {key}].double() - values[base].double())
        phi[key] = total
    return phi
