"""Conformance checks of a head's metrics and distributed hook, beyond its loss and gradients.

Metrics are plain floats; ``metric_sums`` of two half batches merge into the whole batch's metrics;
a head that never ran a batch names and computes its metrics from summed statistics the same way;
told a world of one by ``bind_distributed``, the head computes what it computes untold. Targets given
as raw values are collated with the head's own ``collate_targets``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mmzoo.testing._conformance_checks import (
    assert_close,
    assert_metrics_equal,
    call_optional,
    check_metrics,
    detach,
)


def collate_target(head: Any, target: Any) -> Any:
    """``target`` as the head's batches carry it: a tensor or ``None`` as given, raw targets collated."""
    if target is None or isinstance(target, Tensor):
        return target
    collate = getattr(head, "collate_targets", None)
    return collate(list(target)) if collate else torch.as_tensor(target)


def _slice_target(target: Any, part: slice) -> Any:
    return None if target is None else target[part]


def check_fixed_at_build(head: Any, idle: Any, outputs: Tensor, target: Any, label: str) -> None:
    """A head that never ran a batch (a rank whose evaluation shard is empty) turns summed statistics
    into the same metrics, names included, as the head that produced them."""
    sums = call_optional(getattr(head, "metric_sums", None), outputs, target)
    if sums is None:
        return
    assert_metrics_equal(
        head.metrics_from_sums(sums),
        check_metrics(idle.metrics_from_sums(sums), label, "metrics_from_sums(sums) before any forward"),
        label,
        "metrics_from_sums of a freshly built head (names must be fixed at build, not by forward)",
    )


def check_distributed_context(head: Any, fused: Any, target: Any, label: str, atol: float) -> None:
    """``bind_distributed``: told a world of one, the head computes what it computes untold; ``None``
    unbinds it."""
    bind = getattr(head, "bind_distributed", None)
    if not callable(bind):
        return
    from mmzoo.train.distributed import DistributedContext

    fixed = detach(fused)
    head.train()
    with torch.no_grad():
        alone = detach(head.loss(head(fixed), target))
        bind(DistributedContext(rank=0, world_size=1))
        told = detach(head.loss(head(fixed), target))
        bind(None)
    assert_close(alone, told, label, "loss with bind_distributed(world of one) vs without", atol)


def check_head_metrics(head: Any, outputs: Tensor, target: Any, batch: int, label: str) -> None:
    """``metrics`` are plain floats, and ``metric_sums`` (of the batch, and of its two halves merged)
    give the same metrics through ``metrics_from_sums``."""
    found = call_optional(getattr(head, "metrics", None), outputs, target)
    if found is None:
        return
    metrics = check_metrics(found, label, "metrics(outputs, target)")
    sums = call_optional(getattr(head, "metric_sums", None), outputs, target)
    if sums is None:
        return
    sums = check_metrics(sums, label, "metric_sums(outputs, target)")
    merged = check_metrics(head.metrics_from_sums(sums), label, "metrics_from_sums(sums)")
    assert_metrics_equal(metrics, merged, label, "metrics_from_sums(metric_sums(...)) vs metrics(...)")
    if getattr(head, "metrics_within_batch", False) or batch < 2:
        return
    totals: dict[str, float] = {}
    for part in (slice(0, batch // 2), slice(batch // 2, batch)):
        for name, value in head.metric_sums(outputs[part], _slice_target(target, part)).items():
            totals[name] = totals.get(name, 0.0) + value
    assert_metrics_equal(
        metrics,
        head.metrics_from_sums(totals),
        label,
        "metric sums of two half batches, merged, vs the whole batch",
    )
