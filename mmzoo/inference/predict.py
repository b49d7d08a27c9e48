"""``model.predict``: raw examples in, one :mod:`~mmzoo.inference.results` object per example out.

Examples are preprocessed by the model's encoders in batches of ``batch_size``, run in eval mode under
``torch.inference_mode`` on the model's device (the mode is restored afterwards), and the head's
outputs are read as the head says: softmax top-k for ``num_classes``, sigmoid over a threshold for
``num_labels``, values for ``num_outputs``, per-modality embeddings for a contrastive model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from mmzoo.errors import MmzooError
from mmzoo.inference.results import (
    ClassPrediction,
    MultilabelPrediction,
    OutputPrediction,
    Prediction,
    RegressionPrediction,
)


def head_task(model: Any) -> str:
    """How predictions read the head's outputs: "classification", "multilabel", "regression",
    "embedding" (a fusion that keeps modalities apart) or "outputs" (anything else)."""
    head = model.head
    if getattr(model.fusion, "output_kind", "tensor") == "dict" or getattr(head, "input_kind", "tensor") == "dict":
        return "embedding"
    for attr, task in (("num_classes", "classification"), ("num_labels", "multilabel"), ("num_outputs", "regression")):
        value = getattr(head, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return task
    return "outputs"


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model that has neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and ``torch.inference_mode`` inside; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def as_examples(model: Any, examples: Any, what: str = "predict") -> tuple[list[Mapping[str, Any]], bool]:
    """The examples as a list of dicts, and whether one example was given alone (a dict, or a raw value
    for a model with one encoder)."""
    keys = list(model.encoders)
    if isinstance(examples, Mapping):
        return [examples], True
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence):
        if len(keys) == 1:
            return [{keys[0]: examples}], True
        raise MmzooError(f"{what} takes a list of examples, each a dict holding a raw value for each of "
                         f"{', '.join(keys)}; got {type(examples).__name__}")
    items = list(examples)
    if not items:
        raise MmzooError(f"{what} got no examples; give a list of example dicts (keys {', '.join(keys)})")
    if len(keys) == 1 and not any(isinstance(item, Mapping) for item in items):
        return [{keys[0]: item} for item in items], False  # raw values for a one-encoder model
    return items, False


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MmzooError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def output_names(model: Any, size: int) -> tuple[list[str], bool]:
    """The model's labels, or the indices ``"0"``.. ``"size-1"`` (and False) when it has none."""
    labels = getattr(model, "labels", None)
    if labels is not None and len(labels) == size:
        return list(labels), True
    return [str(i) for i in range(size)], False


def predict(model: Any, examples: Any, *, top_k: int | None = 1, batch_size: int = 32,
            threshold: float | None = None) -> Prediction | list[Prediction]:
    """Predict on raw examples (see :meth:`mmzoo.model.MultimodalModel.predict`)."""
    items, single = as_examples(model, examples)
    batch_size = check_batch_size(batch_size)
    task = head_task(model)
    if task == "embedding":
        from mmzoo.inference.embed import embed_examples

        results = embed_examples(model, items, batch_size=batch_size)
        return results[0] if single else results
    reader = _Reader(model, task, top_k, threshold)
    device = model_device(model)
    results: list[Prediction] = []
    with evaluating(model):
        for start in range(0, len(items), batch_size):
            batch = _inputs(model, items[start : start + batch_size])
            if device.type != "cpu":
                batch = to_device(batch, device)
            results.extend(reader.read(model(batch).outputs))
    return results[0] if single else results


def _inputs(model: Any, chunk: list) -> dict[str, Any]:
    """The batch of ``chunk`` as the model's collator builds it, targets left out: each encoder's
    ``preprocess`` of its key's values; an example may lack inputs (the key absent or None), and a
    mistake (an example that is not a dict, a misspelt key) is the collator's clear error."""
    return model.collator([{k: v for k, v in e.items() if k != "target"} if isinstance(e, Mapping) else e
                           for e in chunk])


def to_device(value: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts) moved to ``device``; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


class _Reader:
    """Turns one batch of head outputs into predictions."""

    def __init__(self, model: Any, task: str, top_k: int | None, threshold: float | None) -> None:
        self.task = task
        head = model.head
        size = {"classification": "num_classes", "multilabel": "num_labels", "regression": "num_outputs"}.get(task)
        self.size = getattr(head, size) if size else None
        if self.size is not None:
            self.names, self.named = output_names(model, self.size)
            if not self.named and task != "regression":
                warnings.warn("this model has no labels (model.labels is None), so predictions name classes by "
                              "index ('0', '1', ...); train it on a dataset that names its classes, or set "
                              "model.labels", stacklevel=4)
        if task == "classification":
            if top_k is None:
                top_k = self.size
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise MmzooError(f"top_k must be a positive integer (or None for every class), got {top_k!r}")
            self.top_k = min(top_k, self.size)
        if task == "multilabel":
            threshold = getattr(head, "threshold", 0.5) if threshold is None else threshold
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                raise MmzooError(f"threshold must be a probability in [0, 1], got {threshold!r}")
            self.threshold = float(threshold)

    def read(self, outputs: Any) -> list[Prediction]:
        if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
            shape = list(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
            raise MmzooError(f"the model's head gave {shape}, not one row of outputs per example; model.predict "
                             "reads [batch, outputs] tensors")
        outputs = outputs.float()
        if self.task == "classification":
            top = outputs.softmax(dim=1).topk(self.top_k, dim=1)
            names = self.names
            return [ClassPrediction(tuple([names[i] for i in idx]), tuple(sc), self.named)
                    for idx, sc in zip(top.indices.tolist(), top.values.tolist())]
        if self.task == "multilabel":
            return [self._multilabel(row) for row in outputs.sigmoid().tolist()]
        if self.task == "regression":
            return [RegressionPrediction(dict(zip(self.names, row)), self.named) for row in outputs.tolist()]
        return [OutputPrediction(tuple(row)) for row in outputs.tolist()]

    def _multilabel(self, row: list[float]) -> MultilabelPrediction:
        chosen = sorted((i for i, p in enumerate(row) if p >= self.threshold), key=lambda i: -row[i])
        return MultilabelPrediction(tuple(self.names[i] for i in chosen), tuple(row[i] for i in chosen),
                                    self.threshold, dict(zip(self.names, row)), self.named)
