"""What ``model.predict`` and ``model.zero_shot`` return: one plain object per example.

Which one depends on the model's head: a classifier (``num_classes``) gives a :class:`ClassPrediction`,
a multi-label head (``num_labels``) a :class:`MultilabelPrediction`, a regression head
(``num_outputs``) a :class:`RegressionPrediction`, a contrastive model (its fusion keeps the
modalities apart) an :class:`EmbeddingPrediction`, and any other head its raw outputs
(:class:`OutputPrediction`). Each has ``to_dict()``, a JSON-ready dict with its ``kind``.

Names come from ``model.labels``. A model without labels names its outputs by index (``"0"``,
``"1"``...) and its predictions say so with ``named=False``. Importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(slots=True)
class Prediction:
    """Base of every prediction: ``kind`` names the type, ``to_dict()`` gives JSON-ready values."""

    kind: ClassVar[str] = "prediction"

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - each subclass defines it
        raise NotImplementedError


@dataclass(slots=True)
class ClassPrediction(Prediction):
    """Single-label classification: the ``top_k`` classes, best first, with their probabilities
    (softmax over every class). ``label`` and ``score`` are the best one's."""

    kind: ClassVar[str] = "classification"
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    named: bool = True  # False: the model has no labels and ``labels`` are class indices as strings

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def score(self) -> float:
        return self.scores[0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "score": self.score, "labels": list(self.labels),
                "scores": list(self.scores), "named": self.named}


@dataclass(slots=True)
class MultilabelPrediction(Prediction):
    """Multi-label classification: the labels whose probability (sigmoid) reaches ``threshold``, best
    first, with their ``scores``; ``probabilities`` holds every label's, in the model's label order."""

    kind: ClassVar[str] = "multilabel"
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    threshold: float
    probabilities: dict[str, float] = field(default_factory=dict)
    named: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "labels": list(self.labels), "scores": list(self.scores),
                "threshold": self.threshold, "probabilities": dict(self.probabilities), "named": self.named}


@dataclass(slots=True)
class RegressionPrediction(Prediction):
    """Regression: one value per output, by name (the dataset's target names, else ``"0"``, ``"1"``...);
    ``value`` is the only one of a single-output model."""

    kind: ClassVar[str] = "regression"
    values: dict[str, float]
    named: bool = True

    @property
    def value(self) -> float:
        if len(self.values) != 1:
            raise ValueError(f"this model predicts {len(self.values)} values; read .values")
        return next(iter(self.values.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": dict(self.values), "named": self.named}


@dataclass(slots=True)
class EmbeddingPrediction(Prediction):
    """A contrastive model's embeddings of the example, by batch key (L2-normalised, in the shared space)."""

    kind: ClassVar[str] = "embedding"
    embeddings: dict[str, tuple[float, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "embeddings": {k: list(v) for k, v in self.embeddings.items()}}


@dataclass(slots=True)
class OutputPrediction(Prediction):
    """A head mmzoo cannot interpret (no ``num_classes``, ``num_labels`` or ``num_outputs``): its raw
    output row."""

    kind: ClassVar[str] = "outputs"
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": list(self.values)}
