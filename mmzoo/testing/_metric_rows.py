"""The conformance kit's check of a head's optional whole-set metrics: ``metric_rows`` and
``metrics_from_rows`` (see :mod:`mmzoo.parts.base`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from mmzoo.testing._conformance_checks import assert_metrics_equal, check_metrics


def _half(value: Any, part: slice) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: v[part] for k, v in value.items()}
    return value[part]


def check_metric_rows(head: Any, idle: Any, fused: Any, target: Any, batch: int, label: str) -> None:
    """Rows are per example (first dimension = batch size); the metrics of two half batches' rows,
    concatenated, equal those of the whole batch's rows; a head that never ran a batch (``idle``) names
    and computes them the same way."""
    make, finish = getattr(head, "metric_rows", None), getattr(head, "metrics_from_rows", None)
    if not callable(make) and not callable(finish):
        return
    assert callable(make) and callable(finish), (
        f"{label}: metric_rows and metrics_from_rows come as a pair (a trainer calls the first per batch "
        "and the second once over every batch's rows); define both or neither"
    )
    was_training = head.training
    head.eval()
    try:
        _check_rows(head, idle, make, finish, fused, target, batch, label)
    finally:
        head.train(was_training)


def _check_rows(head: Any, idle: Any, make: Any, finish: Any, fused: Any, target: Any, batch: int,
                label: str) -> None:
    with torch.no_grad():
        rows = make(fused, head(fused), target)
        assert isinstance(rows, Mapping) and rows, (
            f"{label}: metric_rows(fused, outputs, target) must return a non-empty dict of tensors, got {rows!r}"
        )
        for name, value in rows.items():
            shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            assert isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == batch, (
                f"{label}: metric_rows()[{name!r}] must be a tensor with one row per example (first "
                f"dimension {batch}), got {shape}"
            )
        metrics = check_metrics(finish(rows), label, "metrics_from_rows(rows)")
        assert_metrics_equal(
            metrics,
            check_metrics(idle.metrics_from_rows(rows), label, "metrics_from_rows(rows) before any forward"),
            label,
            "metrics_from_rows of a freshly built head (names must be fixed at build, not by forward)",
        )
        if batch < 2:
            return
        parts = [slice(0, batch // 2), slice(batch // 2, batch)]
        halves = [make(_half(fused, p), head(_half(fused, p)), _half(target, p)) for p in parts]
        joined = {name: torch.cat([half[name] for half in halves]) for name in rows}
    assert_metrics_equal(
        metrics, finish(joined), label, "metrics_from_rows of two half batches' rows, concatenated, vs the whole batch"
    )
