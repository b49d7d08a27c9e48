"""Missing modalities: examples that lack some of a model's inputs.

An example lacks an input when its key is absent or ``None``. The collator then preprocesses, per
key, only the examples that have it, and adds ``batch["present"]``: ``{key: BoolTensor[B]}`` for every
encoder key (a batch where every example has every input carries no ``"present"``, exactly as before).
The model runs each encoder on the examples that have its input, places their features in rows of a
full batch (zeros elsewhere; padded tokens masked), and tells the fusion which rows are real.

The contract (optional for third-party parts, see ``docs/missing-modalities.md``):

- a fusion that sets ``handles_missing = True`` is called as ``forward(features, present=masks)``
  whenever a batch is incomplete; its output for an example must not depend on the feature values
  of the modalities that example lacks. A fusion without it is called exactly as before on complete
  batches and an incomplete batch is an error naming the examples and inputs;
- a fusion may define ``empty_output(batch_size)``: what it gives an example with no input at all.
  Explanations use it as the baseline ``score(none)``; without it they call ``forward`` with every
  modality absent;
- a head that takes one embedding per modality (``input_kind = "dict"``) sets ``handles_missing =
  True`` and takes ``forward(fused, present=masks)`` to be used on incomplete batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mmzoo.errors import MmzooError, did_you_mean
from mmzoo.outputs import EncoderOutput

PRESENT = "present"
"""The batch key of the presence masks: ``batch["present"] = {encoder key: BoolTensor[B]}``."""


def is_missing(example: Mapping[str, Any], key: str) -> bool:
    """An example lacks ``key`` when the key is absent or its value is ``None``."""
    return example.get(key) is None


def presence(examples: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, list[bool]]:
    """Per key, whether each example has it. A key that no example has, while some example has a key
    the model does not read that looks like it (a typo such as ``img`` for ``image``), is an error:
    silently treating every example as lacking it would hide the mistake."""
    found = {key: [not is_missing(example, key) for example in examples] for key in keys}
    for key, flags in found.items():
        if any(flags) or any(key in example for example in examples):
            continue
        unknown = sorted({str(k) for example in examples for k in example} - set(keys) - {"target", PRESENT})
        hint = did_you_mean(key, unknown)
        if hint:
            raise MmzooError(f"no example has '{key}', which this model reads ({', '.join(keys)}), but they have "
                             f"{', '.join(repr(k) for k in unknown)}.{hint}")
    return found


def masks_from(flags: Mapping[str, list[bool]]) -> dict[str, Tensor]:
    """``{key: BoolTensor[B]}`` from per-key lists of booleans."""
    return {key: torch.tensor(values, dtype=torch.bool) for key, values in flags.items()}


def complete(present: Mapping[str, Tensor] | None) -> bool:
    """True when no example lacks any input (one host sync per key)."""
    return present is None or all(bool(mask.all()) for mask in present.values())


def full_masks(present: Mapping[str, Tensor] | None, keys: Sequence[str], batch_size: int,
               device: torch.device) -> dict[str, Tensor]:
    """A mask for every key: the batch's own, or all true for a key it does not list."""
    present = present or {}
    out = {}
    for key in keys:
        mask = present.get(key)
        if mask is None:
            out[key] = torch.ones(batch_size, dtype=torch.bool, device=device)
        else:
            out[key] = torch.as_tensor(mask, dtype=torch.bool, device=device)
    return out


def batch_size_of(present: Mapping[str, Tensor]) -> int:
    """The number of examples the presence masks describe (they must agree)."""
    sizes = {int(mask.shape[0]) for mask in present.values()}
    if len(sizes) != 1 or any(mask.dim() != 1 for mask in present.values()):
        shapes = {key: list(mask.shape) for key, mask in present.items()}
        raise MmzooError(f"batch['{PRESENT}'] must hold one bool vector per key, all of one length; got {shapes}")
    return sizes.pop()


def scatter(feature: EncoderOutput, mask: Tensor, batch_size: int) -> EncoderOutput:
    """Features of the rows where ``mask`` is true, placed in a batch of ``batch_size`` rows: zeros in
    the other rows, and their tokens masked out (gradients flow to the present rows)."""
    rows = mask.nonzero().squeeze(1)
    pooled = feature.pooled.new_zeros((batch_size, *feature.pooled.shape[1:])).index_copy(0, rows, feature.pooled)
    if feature.tokens is None:
        return EncoderOutput(pooled)
    tokens = feature.tokens.new_zeros((batch_size, *feature.tokens.shape[1:])).index_copy(0, rows, feature.tokens)
    token_mask = feature.mask
    if token_mask is None:
        token_mask = torch.ones(feature.tokens.shape[:2], dtype=torch.bool, device=feature.tokens.device)
    full_mask = torch.zeros((batch_size, tokens.shape[1]), dtype=torch.bool, device=tokens.device)
    return EncoderOutput(pooled, tokens, full_mask.index_copy(0, rows, token_mask.to(torch.bool)))


def absent_feature(batch_size: int, dim: int, reference: Tensor) -> EncoderOutput:
    """The feature of a key that no example of the batch has: zeros, no tokens."""
    return EncoderOutput(reference.new_zeros((batch_size, dim)))


def lacking(present: Mapping[str, Tensor], limit: int = 5) -> str:
    """``"example 1 has no 'b', example 3 has no 'a', 'b'"`` for messages (the first ``limit`` examples)."""
    names = list(present)
    stacked = torch.stack([present[k].to(torch.bool).cpu() for k in names], dim=1)
    rows = (~stacked).any(dim=1).nonzero().squeeze(1).tolist()
    parts = []
    for row in rows[:limit]:
        missing = ", ".join(f"'{names[j]}'" for j in range(len(names)) if not bool(stacked[row, j]))
        parts.append(f"example {row} has no {missing}")
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    return "; ".join(parts) + more


def check_handles_missing(part: Any, kind: str, present: Mapping[str, Tensor]) -> None:
    """An incomplete batch reaches only parts that declare ``handles_missing``."""
    if getattr(part, "handles_missing", False):
        return
    name = getattr(part, "part_name", "") or type(part).__name__
    raise MmzooError(
        f"{kind} '{name}' does not handle missing inputs (it does not set handles_missing = True), but "
        f"{lacking(present)}; give every example every input, or use a {kind} that handles missing "
        "modalities (every builtin fusion does; see docs/missing-modalities.md)"
    )


def require_some_input(label: str, present: Mapping[str, Tensor]) -> None:
    """For fusions that mask missing modalities out: an example with no input at all is an error."""
    stacked = torch.stack([mask.to(torch.bool) for mask in present.values()], dim=1)
    empty = (~stacked.any(dim=1)).nonzero().squeeze(1).tolist()
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        raise MmzooError(
            f"{label}: example(s) {shown} have none of the inputs {', '.join(present)}; this fusion masks "
            "missing modalities out and needs at least one (concat, bilinear and film accept examples with "
            "no input)"
        )
