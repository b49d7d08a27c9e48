"""Conformance checks for the feature cache's pieces of the contract.

- An encoder's ``output_cacheable`` statement (checked by :func:`~mmzoo.testing.check_encoder` for every
  encoder that makes one): ``True``, ``False`` or ``None``; and when ``True``, with every parameter frozen
  and the encoder in training mode, its output for an example is the same every time, draws no random
  numbers, and does not depend on the other examples of the batch.
- A dataset's ``fingerprint()`` (:func:`check_dataset_fingerprint`): a non-empty string, the same for two
  datasets built alike (which give the same examples), and different for parameters that change the
  examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["check_dataset_fingerprint", "check_output_cacheable"]


def check_output_cacheable(encoder: nn.Module, fresh: Callable[[], nn.Module], examples: Sequence[Any],
                           label: str) -> None:
    """Check ``encoder``'s ``output_cacheable`` statement; ``fresh()`` builds another instance alike
    (the one that is frozen and probed)."""
    from mmzoo.feature_cache.eligibility import ATTRIBUTE, probe_reason

    declared = getattr(encoder, ATTRIBUTE, None)
    assert declared is None or isinstance(declared, bool), (
        f"{label}: {ATTRIBUTE} must be True, False or None, got {declared!r}"
    )
    if declared is not True:
        return
    probe = fresh()
    probe.requires_grad_(False)
    probe.train()
    reason = probe_reason("probe", probe, list(examples), torch.device("cpu"))
    assert reason is None, (
        f"{label}: declares {ATTRIBUTE} = True, but with its parameters frozen and in training mode {reason}"
    )


def check_dataset_fingerprint(
    factory: Callable[..., Any] | str,
    params: Mapping[str, Any] | None = None,
    *,
    split: str = "train",
    variants: Sequence[Mapping[str, Any]] = (),
    sample: int = 8,
) -> str | None:
    """Check a dataset's ``fingerprint()``; return it (None for a dataset without one, which the feature
    cache fingerprints by hashing its examples).

    ``factory`` is a dataset factory or a registered dataset name. Two datasets built with ``params``
    must give the same fingerprint and the same first ``sample`` examples; each of ``variants`` (parameters
    that change the examples) must give another fingerprint.
    """
    from mmzoo.content_hash import content_digest

    build = _dataset_factory(factory)
    label = f"dataset {factory!r}" if isinstance(factory, str) else getattr(factory, "__name__", repr(factory))
    first, second = build(split=split, **dict(params or {})), build(split=split, **dict(params or {}))
    method = getattr(first, "fingerprint", None)
    if method is None:
        return None
    assert callable(method), f"{label}: fingerprint must be a method, got {type(method).__name__}"
    value = method()
    assert isinstance(value, str) and value, f"{label}: fingerprint() must return a non-empty string, got {value!r}"
    assert second.fingerprint() == value, f"{label}: two datasets built alike give different fingerprints"
    assert first.fingerprint() == value, f"{label}: fingerprint() changes between calls"
    for index in range(min(sample, len(first))):
        assert content_digest(first[index]) == content_digest(second[index]), (
            f"{label}: two datasets with the same fingerprint give different examples at index {index}"
        )
    for variant in variants:
        other = build(split=split, **{**dict(params or {}), **dict(variant)})
        assert other.fingerprint() != value, (
            f"{label}: parameters {dict(variant)} change the examples but not the fingerprint"
        )
    return value


def _dataset_factory(factory: Callable[..., Any] | str) -> Callable[..., Any]:
    if not isinstance(factory, str):
        return factory
    import mmzoo

    return lambda split="train", **params: mmzoo.create_dataset(factory, split=split, **params)
