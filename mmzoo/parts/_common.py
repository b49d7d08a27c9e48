"""Helpers shared by the builtin parts: parameter validation, masks and feature access."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmzoo.errors import BuildError, DatasetError
from mmzoo.outputs import EncoderOutput


def positive_int(part: str, name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1, else raise a :class:`BuildError` naming ``part``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BuildError(f"{part}: '{name}' must be a positive integer, got {value!r}.")
    return value


def optional_positive_int(part: str, name: str, value: Any) -> int | None:
    """Like :func:`positive_int` but ``None`` passes through."""
    return None if value is None else positive_int(part, name, value)


def int_list(part: str, name: str, value: Any, *, allow_empty: bool = True) -> list[int]:
    """Return ``value`` (an int or a sequence of positive ints) as a list."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise BuildError(f"{part}: '{name}' must be a list of positive integers, got {value!r}.")
    items = [positive_int(part, f"{name}[{i}]", v) for i, v in enumerate(value)]
    if not items and not allow_empty:
        raise BuildError(f"{part}: '{name}' must list at least one positive integer, got [].")
    return items


def fraction(part: str, name: str, value: Any, *, upper_inclusive: bool = False) -> float:
    """Return ``value`` if it is a number in [0, 1) (or [0, 1]), else raise a :class:`BuildError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and 0.0 <= value and (value <= 1.0 if upper_inclusive else value < 1.0)
    if not ok:
        bound = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise BuildError(f"{part}: '{name}' must be a number in {bound}, got {value!r}.")
    return float(value)


def choice(part: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a :class:`BuildError`."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise BuildError(f"{part}: '{name}' must be one of {options}, got {value!r}.")
    return value


def check_input_dims(part: str, input_dims: Any, *, minimum: int = 1) -> dict[str, int]:
    """Validate a fusion's ``input_dims`` mapping (batch key -> encoder output_dim)."""
    if not isinstance(input_dims, Mapping) or not input_dims:
        raise BuildError(
            f"{part}: input_dims must be a non-empty mapping of batch key to encoder output_dim, "
            f"got {input_dims!r}."
        )
    dims = {}
    for key, dim in input_dims.items():
        if not isinstance(key, str):
            raise BuildError(f"{part}: input_dims keys must be batch-key strings, got {key!r}.")
        dims[key] = positive_int(part, f"input_dims[{key!r}]", dim)
    if len(dims) < minimum:
        raise BuildError(
            f"{part} fuses at least {minimum} modalities, but the model has {len(dims)} "
            f"({', '.join(dims)}); add encoders or pick another fusion (e.g. 'concat')."
        )
    return dims


def gather_features(part: str, features: Mapping[str, Any], keys: Sequence[str]) -> dict[str, EncoderOutput]:
    """Return ``features`` for ``keys`` as :class:`EncoderOutput`, failing clearly on a missing key."""
    missing = [k for k in keys if k not in features]
    if missing:
        raise BuildError(
            f"{part}: features for {missing} are missing; it was built for keys {list(keys)} "
            f"and got {list(features)}."
        )
    out = {}
    for key in keys:
        feature = features[key]
        if isinstance(feature, Tensor):
            feature = EncoderOutput(pooled=feature)
        elif not isinstance(feature, EncoderOutput):
            raise BuildError(
                f"{part}: feature {key!r} must be an EncoderOutput or a Tensor, got {type(feature).__name__}."
            )
        out[key] = feature
    return out


def tokens_and_mask(feature: EncoderOutput) -> tuple[Tensor, Tensor]:
    """Return ``(tokens [B, T, D], mask [B, T])``; a pooled-only feature becomes one token."""
    if feature.tokens is None:
        tokens = feature.pooled.unsqueeze(1)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if feature.mask is None:
        mask = torch.ones(feature.tokens.shape[:2], dtype=torch.bool, device=feature.tokens.device)
        return feature.tokens, mask
    return feature.tokens, feature.mask.to(torch.bool)


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``tokens [B, T, D]`` over the positions where ``mask [B, T]`` is true."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def bad_example(part: str, index: int, message: str) -> DatasetError:
    """Build the error raised when ``preprocess`` cannot use example ``index``."""
    return DatasetError(f"{part}: example {index}: {message}")


def presence_masks(part: str, present: Mapping[str, Tensor] | None, keys: Sequence[str],
                   reference: Tensor) -> dict[str, Tensor]:
    """A bool mask ``[B]`` per key (all true for a key ``present`` does not list, or without ``present``),
    on ``reference``'s device and batch size."""
    batch = reference.shape[0]
    masks = {}
    for key in keys:
        mask = None if present is None else present.get(key)
        if mask is None:
            masks[key] = torch.ones(batch, dtype=torch.bool, device=reference.device)
            continue
        mask = torch.as_tensor(mask, device=reference.device).to(torch.bool)
        if mask.shape != (batch,):
            raise BuildError(f"{part}: present[{key!r}] must be a bool vector of the batch size {batch}, "
                             f"got shape {list(mask.shape)}.")
        masks[key] = mask
    return masks


def keep_rows(value: Tensor, mask: Tensor) -> Tensor:
    """``value`` where ``mask [B]`` is true and 0 elsewhere, whatever the other rows held (even NaN)."""
    shape = (-1,) + (1,) * (value.dim() - 1)
    return torch.where(mask.view(shape), value, value.new_zeros(()))
