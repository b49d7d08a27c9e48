"""What an explanation holds: plain containers, JSON-ready through ``to_dict`` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ImageAttribution:
    """Integrated gradients over one image input, at the resolution the encoder sees.

    ``heat`` is ``[H, W]``: the attributions summed over colour channels (positive pixels raise the
    explained score, negative ones lower it). ``baseline`` names the input the path starts from, and
    ``delta`` is the completeness error of the integral (the sum of ``heat`` minus the score
    difference between the image and the baseline), small when ``steps`` suffice.
    """

    heat: np.ndarray
    method: str = "integrated-gradients"
    baseline: str = "the encoder's zero input (the mean colour of normalised images)"
    steps: int = 128
    delta: float = 0.0
    png: str | None = None

    def to_dict(self) -> dict[str, Any]:
        positive = np.clip(self.heat, 0, None)
        return {"method": self.method, "baseline": self.baseline, "steps": self.steps, "delta": self.delta,
                "shape": list(self.heat.shape), "sum": float(self.heat.sum()),
                "positive_sum": float(positive.sum()), "png": self.png}


@dataclass
class TokenAttribution:
    """Integrated gradients through the token embeddings of one text input.

    ``tokens`` are the encoder's tokens (bytes for ``byte-gru``, word pieces for ``hf/`` models) and
    ``scores`` their attributions (summed over the embedding); ``words`` groups them between
    whitespace tokens, when the tokens spell the text (``byte-gru``). The baseline replaces every
    token's embedding with zeros while keeping the sequence's length.
    """

    tokens: list[str]
    scores: list[float]
    words: list[tuple[str, float]] = field(default_factory=list)
    method: str = "integrated-gradients"
    baseline: str = "zero embeddings, same length"
    steps: int = 128
    delta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "baseline": self.baseline, "steps": self.steps, "delta": self.delta,
                "tokens": [{"token": t, "score": s} for t, s in zip(self.tokens, self.scores)],
                "words": [{"word": w, "score": s} for w, s in self.words]}


@dataclass
class Explanation:
    """Why the model gave one example its output.

    ``target`` is the explained output index (the predicted class unless one was asked for) and
    ``label`` its name when the model has labels. ``score`` is that output (a logit) with every
    input the example has, ``baseline`` the same output with no input at all (see
    :mod:`mmzoo.explain`). ``shapley`` gives each input's exact Shapley value over the model's
    inputs; they add up to ``score - baseline``, and an input the example lacks gets 0. ``subsets``
    is the score of every subset of inputs (``"audio+image"``; ``""`` for none). ``images`` and
    ``tokens`` hold the attributions within image and text inputs, by batch key.
    """

    target: int
    label: str | None
    score: float
    baseline: float
    shapley: dict[str, float]
    present: tuple[str, ...]
    subsets: dict[str, float]
    images: dict[str, ImageAttribution] = field(default_factory=dict)
    tokens: dict[str, TokenAttribution] = field(default_factory=dict)
    chart: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (heat maps as a summary and the PNG's path, not every pixel)."""
        return {
            "target": self.target,
            "label": self.label,
            "score": self.score,
            "baseline": self.baseline,
            "shapley": dict(self.shapley),
            "shapley_sum": float(sum(self.shapley.values())),
            "present": list(self.present),
            "subsets": dict(self.subsets),
            "images": {k: v.to_dict() for k, v in self.images.items()},
            "tokens": {k: v.to_dict() for k, v in self.tokens.items()},
            "chart": self.chart,
        }
