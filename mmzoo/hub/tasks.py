"""Which of the Hub's own task ids describes a model: its card's ``pipeline_tag`` and results' task type.

The Hub files every model under one task from its fixed list (``image-classification``,
``zero-shot-image-classification``, ``tabular-regression``...). mmzoo composes any modalities with any
head, and most compositions have no such task: the Hub has no task for classifying an image *and* a
caption together. So a task is chosen only when the head is a builtin one and the set of modalities its
encoders read has an exact Hub counterpart; otherwise the card has no ``pipeline_tag`` (and its results,
if any, the Hub's catch-all ``other``) rather than a task that would misdescribe the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The Hub's catch-all task id, for results of a model no other task describes.
OTHER = "other"

# (head, modalities its encoders read) -> Hub task id. Multi-label classification is filed under the
# same tasks as single-label on the Hub; tabular covers vectors of features.
_CLASSIFICATION = {
    frozenset({"image"}): "image-classification",
    frozenset({"text"}): "text-classification",
    frozenset({"audio"}): "audio-classification",
    frozenset({"video"}): "video-classification",
    frozenset({"vector"}): "tabular-classification",
    frozenset({"tabular"}): "tabular-classification",
}
_REGRESSION = {
    frozenset({"vector"}): "tabular-regression",
    frozenset({"tabular"}): "tabular-regression",
}
# A contrastive model embeds each modality into one space: with images and text that is CLIP, which the
# Hub files as zero-shot image classification; text with text is sentence similarity; anything else is
# an embedding model.
_CONTRASTIVE = {
    frozenset({"image", "text"}): "zero-shot-image-classification",
    frozenset({"text"}): "sentence-similarity",
    frozenset({"image"}): "image-feature-extraction",
}
_BY_HEAD = {
    "classification": _CLASSIFICATION,
    "multilabel": _CLASSIFICATION,
    "regression": _REGRESSION,
    "contrastive": _CONTRASTIVE,
}


@dataclass(frozen=True)
class HubTask:
    """``pipeline_tag``: a Hub task id, or None when none fits; ``results_type``: the task id that the
    card's evaluation results are filed under (``other`` when none fits)."""

    pipeline_tag: str | None

    @property
    def results_type(self) -> str:
        return self.pipeline_tag or OTHER


def hub_task(head: str, modalities: Iterable[str]) -> HubTask:
    """The Hub task of a model with head type ``head`` (``classification``, ``DIST:name``...) whose
    encoders read ``modalities`` (``image``, ``text``...)."""
    name = head.split(":", 1)[-1]
    table = _BY_HEAD.get(name, {})
    tag = table.get(frozenset(modalities))
    if tag is None and name == "contrastive":
        tag = "feature-extraction"
    return HubTask(tag)
