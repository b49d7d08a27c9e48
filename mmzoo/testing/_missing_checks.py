"""Conformance checks for parts that declare ``handles_missing = True`` (see :mod:`mmzoo.missing`).

A fusion that declares it must, for every subset of its modalities missing from some examples: give
finite outputs of the documented shape, let gradients flow back, and give each example an output that
does not depend on the feature values of the inputs it lacks. An example with no input at all may be
refused with an :class:`~mmzoo.MmzooError` (masking fusions) or fused like any other; ``empty_output``,
when defined, gives finite ``[n, output_dim]`` rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmzoo.errors import MmzooError
from mmzoo.outputs import EncoderOutput
from mmzoo.testing._conformance_checks import assert_close, detach, random_objective

MAX_SUBSETS = 64  # every subset up to 6 modalities; beyond, the single and all-but-one subsets


def missing_subsets(keys: Sequence[str]) -> list[tuple[str, ...]]:
    """The non-empty subsets of ``keys`` to take away (all of them for up to 6 keys)."""
    subsets = [s for r in range(1, len(keys) + 1) for s in itertools.combinations(keys, r)]
    if len(subsets) <= MAX_SUBSETS:
        return subsets
    return [(k,) for k in keys] + [tuple(k for k in keys if k != drop) for drop in keys] + [tuple(keys)]


def staggered_presence(keys: Sequence[str], batch: int) -> dict[str, Tensor]:
    """Masks where example ``b`` lacks the key ``b mod M`` (``M = len(keys)``) and has every other one; the
    last example has everything. Each key is missing somewhere once ``batch > M``."""
    masks = {key: torch.ones(batch, dtype=torch.bool) for key in keys}
    for b in range(batch - 1):
        masks[keys[b % len(keys)]][b] = False
    return masks


def presence_without(keys: Sequence[str], gone: Sequence[str], batch: int) -> dict[str, Tensor]:
    """Masks where every example but the first lacks the keys ``gone`` (the first has everything)."""
    masks = {}
    for key in keys:
        mask = torch.ones(batch, dtype=torch.bool)
        if key in gone:
            mask[1:] = False
        masks[key] = mask
    return masks


def junk_where_missing(features: Mapping[str, EncoderOutput], present: Mapping[str, Tensor],
                       generator: torch.Generator) -> dict[str, EncoderOutput]:
    """``features`` with large random values in the rows that lack each input (pooled and tokens)."""
    out = {}
    for key, feature in features.items():
        lacking = ~present[key]
        pooled = feature.pooled.detach().clone()
        pooled[lacking] = torch.randn(pooled[lacking].shape, generator=generator) * 100.0
        tokens = None
        if feature.tokens is not None:
            tokens = feature.tokens.detach().clone()
            tokens[lacking] = torch.randn(tokens[lacking].shape, generator=generator) * 100.0
        out[key] = EncoderOutput(pooled, tokens, None if feature.mask is None else feature.mask.clone())
    return out


def _finite(value: Any, label: str, what: str) -> None:
    values = value.values() if isinstance(value, Mapping) else [value]
    for v in values:
        assert isinstance(v, Tensor), f"{label}: {what}: expected tensors, got {type(v).__name__}"
        assert bool(torch.isfinite(v).all()), f"{label}: {what}: the output has NaN or infinite values"


def check_fusion_missing(fusion: nn.Module, features: Mapping[str, EncoderOutput], label: str,
                         check_output: Callable[[Any, int], Any], atol: float) -> None:
    """The promises of a fusion that declares ``handles_missing`` (see the module docstring)."""
    keys = list(features)
    batch = next(iter(features.values())).pooled.shape[0]
    generator = torch.Generator().manual_seed(3)
    refused_all = False
    for gone in missing_subsets(keys):
        present = presence_without(keys, gone, batch)
        what = f"with {list(gone)} missing from examples 1..{batch - 1}"
        fusion.train()
        probe = {k: detach(f) for k, f in features.items()}
        for f in probe.values():
            f.pooled.requires_grad_()
        try:
            out = fusion(probe, present=present)
        except MmzooError:
            if len(gone) == len(keys):
                refused_all = True  # masking fusions refuse examples with no input: allowed
                continue
            raise
        check_output(out, batch)
        _finite(out, label, what)
        fusion.zero_grad(set_to_none=True)
        objective = sum(random_objective(o, generator) for o in (out.values() if isinstance(out, Mapping) else [out]))
        objective.backward()
        for name, param in fusion.named_parameters():
            assert param.grad is None or bool(torch.isfinite(param.grad).all()), (
                f"{label}: {what}: non-finite gradient in {name}"
            )
        for key, f in probe.items():
            assert f.pooled.grad is None or bool(torch.isfinite(f.pooled.grad).all()), (
                f"{label}: {what}: non-finite gradient reached the features of {key!r}"
            )
        fusion.eval()
        with torch.no_grad():
            before = fusion({k: detach(f) for k, f in features.items()}, present=present)
            after = fusion(junk_where_missing(features, present, generator), present=present)
        assert_close(
            before,
            after,
            label,
            f"{what}: changing the features of the inputs an example lacks changed its output; a fusion that "
            "declares handles_missing must not read them",
            atol,
        )
    if refused_all:
        _check_empty_output(fusion, batch, label, check_output)


def _check_empty_output(fusion: nn.Module, batch: int, label: str, check_output: Callable[[Any, int], Any]) -> None:
    empty = getattr(fusion, "empty_output", None)
    if not callable(empty):
        return
    fusion.eval()
    with torch.no_grad():
        out = empty(batch)
    check_output(out, batch)
    _finite(out, label, f"empty_output({batch})")


def fusion_objective_with_missing(fusion: nn.Module, features: Mapping[str, EncoderOutput],
                                  generator: torch.Generator) -> Tensor:
    """A random objective of the fusion on a batch where every example lacks one input (so parameters used
    only for missing inputs, like learned absent embeddings, get gradients too)."""
    keys = list(features)
    batch = next(iter(features.values())).pooled.shape[0]
    out = fusion(features, present=staggered_presence(keys, batch))
    return sum(random_objective(o, generator) for o in (out.values() if isinstance(out, Mapping) else [out]))


def check_head_missing(head: nn.Module, fused: Mapping[str, Tensor], target: Any, label: str, atol: float) -> None:
    """A head taking one embedding per modality that declares ``handles_missing``: with one side missing
    from some examples, a finite loss that backward accepts and that does not depend on the embeddings of
    the missing sides."""
    keys = list(fused)
    batch = next(iter(fused.values())).shape[0]
    generator = torch.Generator().manual_seed(5)
    for key in keys:
        present = {k: torch.ones(batch, dtype=torch.bool) for k in keys}
        present[key][1::2] = False
        what = f"with {key!r} missing from every second example"
        head.train()
        probe = {k: v.detach().clone().requires_grad_() for k, v in fused.items()}
        outputs = head(probe, present=present)
        loss = head.loss(outputs, target)
        assert isinstance(loss, Tensor) and loss.dim() == 0 and bool(torch.isfinite(loss)), (
            f"{label}: {what}: the loss must be a finite scalar, got {loss!r}"
        )
        head.zero_grad(set_to_none=True)
        loss.backward()
        for name, leaf in probe.items():
            assert leaf.grad is None or bool(torch.isfinite(leaf.grad).all()), (
                f"{label}: {what}: non-finite gradient reached embedding {name!r}"
            )
        head.eval()
        with torch.no_grad():
            noisy = {k: v.detach().clone() for k, v in fused.items()}
            lacking = ~present[key]
            noisy[key][lacking] = torch.randn(noisy[key][lacking].shape, generator=generator) * 100.0
            before = head({k: v.detach() for k, v in fused.items()}, present=present)
            after = head(noisy, present=present)
            assert_close(
                head.loss(before, target),
                head.loss(after, target),
                label,
                f"{what}: changing the missing side of incomplete examples changed the loss",
                atol,
            )
