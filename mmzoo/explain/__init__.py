"""Explanations: which input drove a prediction, and which parts of it.

``model.explain(examples)`` (or :func:`explain`) returns one :class:`Explanation` per example:

1. **Per input**: exact Shapley values over the model's inputs of the explained output (the logit of
   the predicted class, or of ``target``), computed through the missing-modality path (see
   :mod:`mmzoo.explain.shapley`): they add up to ``score(all) - score(none)``, where ``score(none)`` is
   the model's output for an example with no input at all. An input that the model ignores gets 0, and
   so does one the example lacks.
2. **Within inputs** (``within=True``): integrated gradients with Captum, over each image input (a heat
   map) and through the token embeddings of each text input (a score per token, and per word for
   byte-level text); see :mod:`mmzoo.explain.within`.

With ``out_dir``, each explanation's Shapley bar chart and image heat maps are written there as PNG
files (``example-<i>-shapley.png``, ``example-<i>-<key>-heatmap.png``) and their paths recorded on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mmzoo.errors import MmzooError
from mmzoo.explain.result import Explanation, ImageAttribution, TokenAttribution
from mmzoo.explain.shapley import MAX_MODALITIES, check_explainable, shapley_values, subset_name, subset_outputs

__all__ = ["MAX_MODALITIES", "Explanation", "ImageAttribution", "TokenAttribution", "explain"]


def explain(model: Any, examples: Sequence[Mapping[str, Any]], *, target: int | Sequence[int] | None = None,
            within: bool = True, steps: int = 128, out_dir: str | Path | None = None) -> list[Explanation]:
    """Explain the model's output for each raw example (dicts of inputs, as for ``model.preprocess``;
    an input may be missing). ``target`` picks the explained output index (one for all, or one per
    example; default: each example's predicted class). ``steps`` is the number of integrated-gradient
    steps. The model is run in eval mode and left in the mode it was in.
    """
    keys = check_explainable(model)
    examples = [{k: v for k, v in example.items() if k != "target"} for example in _examples(examples)]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise MmzooError(f"explain: steps must be an integer >= 2, got {steps!r}")
    was_training = model.training
    model.eval()
    try:
        explanations = _explain(model, keys, examples, target, within, steps)
    finally:
        model.train(was_training)
    if out_dir is not None:
        _render(explanations, examples, Path(out_dir))
    return explanations


def _examples(examples: Any) -> list[Mapping[str, Any]]:
    if isinstance(examples, Mapping) or not isinstance(examples, Sequence) or not examples:
        raise MmzooError("explain expects a non-empty list of example dicts (one per example)")
    return list(examples)


def _targets(target: Any, outputs: torch.Tensor) -> torch.Tensor:
    count, width = outputs.shape
    if target is None:
        return outputs.argmax(dim=1)
    chosen = [target] * count if isinstance(target, int) else list(target)
    if len(chosen) != count or not all(isinstance(t, int) and not isinstance(t, bool) for t in chosen):
        raise MmzooError(f"explain: target must be an output index or one per example ({count}), got {target!r}")
    bad = [t for t in chosen if not 0 <= t < width]
    if bad:
        raise MmzooError(f"explain: target {bad[0]} is out of range; the model has outputs 0..{width - 1}")
    return torch.tensor(chosen, device=outputs.device)


def _batch(model: Any, examples: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``model.preprocess(examples)`` on the model's device."""
    from mmzoo.train.data import move_to_device

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return move_to_device(model.preprocess(examples), device)


def _explain(model: Any, keys: list[str], examples: list[Mapping[str, Any]], target: Any, within: bool,
             steps: int) -> list[Explanation]:
    batch = _batch(model, examples)
    with torch.no_grad():
        features, present = model.encode(batch)
        size = len(examples)
        device = next(iter(features.values())).pooled.device
        present = present or {k: torch.ones(size, dtype=torch.bool, device=device) for k in keys}
        outputs = subset_outputs(model, features, present, keys)
    full = outputs[frozenset(keys)]
    if full.dim() != 2:
        raise MmzooError(f"explanations need outputs [examples, outputs]; this head gives {list(full.shape)}")
    chosen = _targets(target, full)
    values = {s: o.gather(1, chosen.unsqueeze(1)).squeeze(1) for s, o in outputs.items()}
    phi = shapley_values(values, keys)
    labels = model.labels
    explanations = []
    for i, example in enumerate(examples):
        t = int(chosen[i])
        has = tuple(k for k in keys if bool(present[k][i]))
        explanation = Explanation(
            target=t,
            label=labels[t] if labels is not None and t < len(labels) else None,
            score=float(values[frozenset(keys)][i]),
            baseline=float(values[frozenset()][i]),
            shapley={k: float(phi[k][i]) for k in keys},
            present=has,
            subsets={subset_name(s): float(v[i]) for s, v in values.items()},
        )
        if within:
            _within(model, example, has, t, steps, explanation)
        explanations.append(explanation)
    return explanations


def _within(model: Any, example: Mapping[str, Any], has: tuple[str, ...], target: int, steps: int,
            explanation: Explanation) -> None:
    """Integrated gradients inside each image and text input the example has (a batch of one)."""
    from mmzoo.explain.within import image_attribution, is_image_input, is_text_input, token_attribution

    batch = _batch(model, [example])
    for key in has:
        encoder, inputs = model.encoders[key], batch.get(key)
        if is_image_input(encoder, inputs):
            explanation.images[key] = image_attribution(model, batch, key, target, steps)
        elif is_text_input(encoder, inputs):
            text = example[key] if isinstance(example[key], str) else None
            explanation.tokens[key] = token_attribution(model, batch, key, target, steps, text)


def _render(explanations: list[Explanation], examples: list[Mapping[str, Any]], out_dir: Path) -> None:
    from mmzoo.explain.render import save_heat_overlay, save_shapley_chart

    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (explanation, example) in enumerate(zip(explanations, examples)):
        explanation.chart = str(save_shapley_chart(explanation, out_dir / f"example-{i}-shapley.png"))
        what = explanation.label if explanation.label is not None else f"output {explanation.target}"
        for key, image in explanation.images.items():
            path = out_dir / f"example-{i}-{key}-heatmap.png"
            image.png = str(save_heat_overlay(example[key], image.heat, path, f"{key}: what drove '{what}'"))
