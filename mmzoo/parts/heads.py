"""Builtin heads: fused features -> outputs, loss and metrics.

Each is built as ``Head(input_dim, **params)``. Metrics merge exactly across batches and ranks:
``metric_sums`` returns additive counts and sums, a trainer totals them (SUM all-reduce across
ranks) and calls ``metrics_from_sums`` once (see :mod:`mmzoo.parts.base`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmzoo.errors import BuildError, DatasetError
from mmzoo.parts._common import fraction, int_list, optional_positive_int, positive_int
from mmzoo.parts.base import Head
from mmzoo.parts.contrastive import ContrastiveHead

__all__ = ["ClassificationHead", "ContrastiveHead", "MultilabelHead", "RegressionHead"]


def _ratio(numerator: float, denominator: float, empty: float = 0.0) -> float:
    return numerator / denominator if denominator else empty


def _numbers(part: str, targets: list, dtype: np.dtype) -> np.ndarray:
    """Stack raw targets (numbers, sequences, arrays, tensors) into one numpy array."""
    rows = [t.detach().cpu().numpy() if isinstance(t, Tensor) else t for t in targets]
    try:
        return np.asarray(rows, dtype=dtype)
    except (TypeError, ValueError) as exc:
        sample = ", ".join(repr(t) for t in targets[:3])
        raise DatasetError(f"{part}: targets must be numbers of one shape, got {sample}, ...") from exc


class _TensorHead(Head):
    """An MLP on one fused tensor (optional hidden layer), with input checks."""

    part_name = ""

    def __init__(self, input_dim: int, out_features: int, hidden_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.label = f"head '{self.part_name}'"
        self.input_dim = positive_int(self.label, "input_dim", input_dim)
        hidden_dim = optional_positive_int(self.label, "hidden_dim", hidden_dim)
        dropout = fraction(self.label, "dropout", dropout)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_dim:
            layers += [nn.Linear(self.input_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_dim or self.input_dim, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, fused: Tensor) -> Tensor:
        if isinstance(fused, Mapping):
            raise BuildError(
                f"{self.label} takes one fused tensor but the fusion returned a dict (keys {list(fused)}); "
                "use a fusion with output_kind 'tensor' such as 'concat'."
            )
        if fused.dim() != 2 or fused.shape[-1] != self.input_dim:
            raise BuildError(f"{self.label}: expected fused features [batch, {self.input_dim}], "
                             f"got {list(fused.shape)}.")
        return self.net(fused)

    def _batch_target(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        if target is None:
            raise DatasetError(f"{self.label} needs a 'target' in the batch to compute its loss and metrics.")
        target = torch.as_tensor(target, device=outputs.device)
        if target.shape[0] != outputs.shape[0]:
            raise DatasetError(f"{self.label}: {target.shape[0]} targets for a batch of {outputs.shape[0]}.")
        return target


class ClassificationHead(_TensorHead):
    """Single-label classification: logits ``[B, num_classes]``, cross-entropy loss.

    Targets are class indices (``collate_targets`` makes a long tensor) or, passed as a float
    tensor ``[B, num_classes]``, class probabilities (e.g. mixup). ``label_smoothing`` is handed
    to the cross-entropy. Metrics: ``accuracy`` and ``top{k}_accuracy`` for each ``k`` in
    ``top_k`` smaller than ``num_classes``; all are per-example means, summed as counts.
    """

    part_name = "classification"

    def __init__(self, input_dim: int, num_classes: int, hidden_dim: int | None = None, dropout: float = 0.0,
                 label_smoothing: float = 0.0, top_k: int | Sequence[int] = (5,)) -> None:
        label = f"head '{self.part_name}'"
        self.num_classes = positive_int(label, "num_classes", num_classes)
        if self.num_classes < 2:
            raise BuildError(f"{label}: 'num_classes' must be at least 2, got {num_classes}; "
                             "use 'regression' or 'multilabel' for a single output.")
        super().__init__(input_dim, self.num_classes, hidden_dim, dropout)
        self.label_smoothing = fraction(label, "label_smoothing", label_smoothing)
        self.top_k = sorted({k for k in int_list(label, "top_k", top_k) if 1 < k < self.num_classes})

    def collate_targets(self, targets: list) -> Tensor:
        """Class indices -> ``LongTensor[B]``, checked against ``num_classes``."""
        array = _numbers(self.label, targets, np.dtype(np.float64))
        if array.ndim != 1 or not np.all(array == np.round(array)):
            raise DatasetError(f"{self.label}: targets must be integer class indices, one per example.")
        self._check_range(array)
        return torch.from_numpy(array.astype(np.int64))

    def _check_range(self, indices: Any) -> None:
        if isinstance(indices, Tensor):
            if torch.compiler.is_compiling():
                # Reading the range back would split a compiled graph in two; classes that went through
                # collate_targets were checked there, and cross_entropy rejects any out of range.
                return
            low, high = (int(v) for v in torch.stack([indices.min(), indices.max()]).tolist())  # one host sync
        else:
            low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= self.num_classes:
            bad = low if low < 0 else high
            raise DatasetError(f"{self.label}: target class {bad} is out of range for num_classes="
                               f"{self.num_classes} (valid: 0..{self.num_classes - 1}).")

    def _classes(self, logits: Tensor, target: Tensor | None) -> Tensor:
        target = self._batch_target(logits, target)
        if target.is_floating_point() and target.dim() == 2:
            if target.shape[1] != self.num_classes:
                raise DatasetError(f"{self.label}: probability targets need {self.num_classes} columns, "
                                   f"got {target.shape[1]}.")
            return target
        if target.dim() != 1 or target.is_floating_point() and not bool((target == target.round()).all()):
            raise DatasetError(f"{self.label}: targets must be class indices [batch] or probabilities "
                               f"[batch, {self.num_classes}], got shape {list(target.shape)}.")
        self._check_range(target)
        return target.long()

    def loss(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        return F.cross_entropy(outputs, self._classes(outputs, target), label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def metric_sums(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        classes = self._classes(outputs, target)
        if classes.dim() == 2:
            classes = classes.argmax(dim=1)
        sums = {"count": float(outputs.shape[0]),
                "correct": float((outputs.argmax(dim=1) == classes).sum())}
        for k in self.top_k:
            top = outputs.topk(k, dim=1).indices
            sums[f"top{k}_correct"] = float((top == classes.unsqueeze(1)).any(dim=1).sum())
        return sums

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        metrics = {"accuracy": _ratio(sums["correct"], sums["count"])}
        for k in self.top_k:
            metrics[f"top{k}_accuracy"] = _ratio(sums[f"top{k}_correct"], sums["count"])
        return metrics


class MultilabelHead(_TensorHead):
    """Multi-label classification: logits ``[B, num_labels]``, binary cross-entropy with logits.

    Targets are multi-hot vectors of ``num_labels`` values in [0, 1]. Metrics at ``threshold``
    on the sigmoid: micro ``f1``, ``precision``, ``recall``, ``exact_match`` (every label right)
    and ``label_accuracy``; plus ``f1@t`` for every ``t`` in ``thresholds``. All merge exactly
    (true/false positives and negatives are summed). A ratio with nothing to count is 1.0 when
    there was also nothing to get wrong (no positives, no predictions).
    """

    part_name = "multilabel"

    def __init__(self, input_dim: int, num_labels: int, hidden_dim: int | None = None, dropout: float = 0.0,
                 threshold: float = 0.5, thresholds: Sequence[float] = (0.25, 0.5, 0.75),
                 pos_weight: float | Sequence[float] | None = None) -> None:
        label = f"head '{self.part_name}'"
        self.num_labels = positive_int(label, "num_labels", num_labels)
        super().__init__(input_dim, self.num_labels, hidden_dim, dropout)
        self.threshold = fraction(label, "threshold", threshold, upper_inclusive=True)
        if isinstance(thresholds, (int, float)) or not isinstance(thresholds, Sequence):
            raise BuildError(f"{label}: 'thresholds' must be a list of numbers in [0, 1], "
                             f"got {thresholds!r}.")
        self.thresholds = sorted({fraction(label, "thresholds", t, upper_inclusive=True) for t in thresholds})
        weight = None
        if pos_weight is not None:
            weight = torch.as_tensor(pos_weight, dtype=torch.float32).expand(self.num_labels).clone()
            if not bool((weight > 0).all()):
                raise BuildError(f"{label}: 'pos_weight' must be positive, got {pos_weight!r}.")
        self.register_buffer("pos_weight", weight)

    def collate_targets(self, targets: list) -> Tensor:
        """Multi-hot vectors -> ``FloatTensor[B, num_labels]``."""
        return torch.from_numpy(_numbers(self.label, targets, np.dtype(np.float32)))

    def _labels(self, logits: Tensor, target: Tensor | None) -> Tensor:
        target = self._batch_target(logits, target).float()
        if target.shape != logits.shape:
            raise DatasetError(f"{self.label}: targets must be multi-hot [batch, {self.num_labels}], "
                               f"got shape {list(target.shape)}.")
        if bool(((target < 0) | (target > 1)).any()):
            raise DatasetError(f"{self.label}: target values must lie in [0, 1].")
        return target

    def loss(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        labels = self._labels(outputs, target)
        return F.binary_cross_entropy_with_logits(outputs, labels, pos_weight=self.pos_weight)

    @torch.no_grad()
    def metric_sums(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        truth = self._labels(outputs, target) >= 0.5
        probs = outputs.sigmoid()
        sums = {"count": float(outputs.shape[0]), "labels": float(outputs.numel())}
        for t in sorted({*self.thresholds, self.threshold}):
            predicted = probs >= t
            sums[f"tp@{t:g}"] = float((predicted & truth).sum())
            sums[f"fp@{t:g}"] = float((predicted & ~truth).sum())
            sums[f"fn@{t:g}"] = float((~predicted & truth).sum())
        predicted = probs >= self.threshold
        sums["exact"] = float((predicted == truth).all(dim=1).sum())
        sums["label_correct"] = float((predicted == truth).sum())
        return sums

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        def f1(t: float) -> float:
            tp, fp, fn = sums[f"tp@{t:g}"], sums[f"fp@{t:g}"], sums[f"fn@{t:g}"]
            return _ratio(2 * tp, 2 * tp + fp + fn, empty=1.0)

        t = self.threshold
        tp, fp, fn = sums[f"tp@{t:g}"], sums[f"fp@{t:g}"], sums[f"fn@{t:g}"]
        metrics = {
            "f1": f1(t),
            "precision": _ratio(tp, tp + fp, empty=1.0 if fn == 0 else 0.0),
            "recall": _ratio(tp, tp + fn, empty=1.0),
            "exact_match": _ratio(sums["exact"], sums["count"]),
            "label_accuracy": _ratio(sums["label_correct"], sums["labels"]),
        }
        metrics.update({f"f1@{u:g}": f1(u) for u in self.thresholds})
        return metrics


class RegressionHead(_TensorHead):
    """Regression: outputs ``[B, num_outputs]``, mean squared error loss.

    Targets are numbers (``num_outputs == 1``) or sequences of ``num_outputs`` numbers. Metrics:
    ``mse``, ``mae``, ``rmse`` over all outputs, and ``r2`` (coefficient of determination per
    output, averaged over outputs; omitted while a target has no variance). All merge exactly.
    """

    part_name = "regression"

    def __init__(self, input_dim: int, num_outputs: int = 1, hidden_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        self.num_outputs = positive_int(f"head '{self.part_name}'", "num_outputs", num_outputs)
        super().__init__(input_dim, self.num_outputs, hidden_dim, dropout)

    def collate_targets(self, targets: list) -> Tensor:
        """Numbers or sequences -> ``FloatTensor[B, num_outputs]``."""
        array = _numbers(self.label, targets, np.dtype(np.float32))
        return torch.from_numpy(array.reshape(len(targets), -1))

    def _values(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        target = self._batch_target(outputs, target).to(outputs.dtype).reshape(outputs.shape[0], -1)
        if target.shape != outputs.shape:
            raise DatasetError(f"{self.label}: targets must have {self.num_outputs} value(s) per example, "
                               f"got shape {list(target.shape)}.")
        return target

    def loss(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        return F.mse_loss(outputs, self._values(outputs, target))

    @torch.no_grad()
    def metric_sums(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        target = self._values(outputs, target).double()
        error = outputs.double() - target
        sums = {"count": float(outputs.shape[0]), "sse": float(error.pow(2).sum()),
                "sae": float(error.abs().sum())}
        for j in range(self.num_outputs):
            sums[f"sse/{j}"] = float(error[:, j].pow(2).sum())
            sums[f"sum_y/{j}"] = float(target[:, j].sum())
            sums[f"sum_y2/{j}"] = float(target[:, j].pow(2).sum())
        return sums

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        n = sums["count"]
        values = n * self.num_outputs
        metrics = {"mse": _ratio(sums["sse"], values), "mae": _ratio(sums["sae"], values)}
        metrics["rmse"] = math.sqrt(metrics["mse"])
        scores = []
        for j in range(self.num_outputs):
            total = sums[f"sum_y2/{j}"] - sums[f"sum_y/{j}"] ** 2 / n if n else 0.0
            if total > 1e-12 * max(1.0, sums[f"sum_y2/{j}"]):
                scores.append(1.0 - sums[f"sse/{j}"] / total)
        if scores:
            metrics["r2"] = sum(scores) / len(scores)
        return metrics
