"""Attributions within one input, with Captum's integrated gradients: a heat map over an image, a
score per token of a text.

Each example is explained alone (a batch of one). The path integral runs ``steps`` points from a
baseline to the input, with every other input of the example held as it is:

- image inputs (an encoder whose ``modality`` is ``"image"`` and whose preprocessed input is a float
  ``[1, C, H, W]`` tensor): the baseline is the zero input, i.e. the mean colour once normalised;
- text inputs (``modality`` ``"text"``): the path runs through the token embeddings, from all-zero
  embeddings (same length, same attention mask) to the real ones. The embedding layer is the
  encoder's ``input_embeddings()`` when it has one, else its first ``torch.nn.Embedding``; the token
  ids are its input tensor, or the ``"input_ids"`` of a dict input; the tokens' text comes from the
  encoder's optional ``token_labels(ids)`` (else the ids themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmzoo.errors import MmzooError
from mmzoo.explain.result import ImageAttribution, TokenAttribution


def _integrated_gradients(forward: Callable[[Tensor], Tensor]):
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:  # a core dependency; an environment that lost it says so
        raise MmzooError("attributions within an input need Captum: pip install captum") from exc
    return IntegratedGradients(forward)


def repeat_batch(value: Any, times: int) -> Any:
    """Every tensor of a batch (nested dicts included) repeated ``times`` along the batch dimension."""
    if isinstance(value, Tensor):
        return value.repeat(times, *([1] * (value.dim() - 1))) if value.dim() else value
    if isinstance(value, Mapping):
        return {k: repeat_batch(v, times) for k, v in value.items()}
    return value


def is_image_input(encoder: nn.Module, inputs: Any) -> bool:
    return getattr(encoder, "modality", None) == "image" and isinstance(inputs, Tensor) \
        and inputs.is_floating_point() and inputs.dim() == 4


def is_text_input(encoder: nn.Module, inputs: Any) -> bool:
    ids = token_ids(inputs)
    return getattr(encoder, "modality", None) == "text" and ids is not None and embedding_layer(encoder) is not None


def token_ids(inputs: Any) -> Tensor | None:
    if isinstance(inputs, Mapping):
        inputs = inputs.get("input_ids")
    if isinstance(inputs, Tensor) and inputs.dim() == 2 and not inputs.is_floating_point():
        return inputs
    return None


def embedding_layer(encoder: nn.Module) -> nn.Module | None:
    layer = getattr(encoder, "input_embeddings", None)
    if callable(layer):
        return layer()
    return next((m for m in encoder.modules() if isinstance(m, nn.Embedding)), None)


def _outputs_with(model: nn.Module, batch: Mapping[str, Any], chunk: int, **replace: Tensor) -> Tensor:
    """The model's outputs on ``batch`` repeated ``chunk`` times, with some inputs replaced."""
    repeated = repeat_batch(dict(batch), chunk)
    repeated.update(replace)
    return model(repeated).outputs


def image_attribution(model: nn.Module, batch: Mapping[str, Any], key: str, target: int,
                      steps: int) -> ImageAttribution:
    """Integrated gradients over ``batch[key]`` (one image) for output ``target``."""
    image = batch[key].detach()
    ig = _integrated_gradients(lambda x: _outputs_with(model, batch, x.shape[0], **{key: x}))
    attributions, delta = ig.attribute(image, baselines=torch.zeros_like(image), target=target, n_steps=steps,
                                       internal_batch_size=steps, return_convergence_delta=True)
    heat = attributions[0].sum(dim=0).detach().float().cpu().numpy()
    return ImageAttribution(heat=heat, steps=steps, delta=float(delta.abs().max()))


def token_attribution(model: nn.Module, batch: Mapping[str, Any], key: str, target: int, steps: int,
                      text: str | None = None) -> TokenAttribution:
    """Integrated gradients through the token embeddings of ``batch[key]`` (one text) for ``target``;
    ``text`` (the raw input) lets tokens that spell it be grouped into words."""
    encoder = model.encoders[key]
    layer = embedding_layer(encoder)
    ids = token_ids(batch[key])
    with torch.no_grad():
        embedded = layer(ids).detach()

    def forward(embeddings: Tensor) -> Tensor:
        handle = layer.register_forward_hook(lambda module, args, output: embeddings.to(output.dtype))
        try:
            return _outputs_with(model, batch, embeddings.shape[0])
        finally:
            handle.remove()

    ig = _integrated_gradients(forward)
    attributions, delta = ig.attribute(embedded, baselines=torch.zeros_like(embedded), target=target,
                                       n_steps=steps, internal_batch_size=steps, return_convergence_delta=True)
    scores = attributions[0].sum(dim=-1).detach().double().cpu().tolist()
    row = ids[0].tolist()
    labels = encoder.token_labels(row) if callable(getattr(encoder, "token_labels", None)) else [str(i) for i in row]
    real = _real_tokens(batch[key], len(row))
    tokens = [label for label, keep in zip(labels, real) if keep]
    kept = [score for score, keep in zip(scores, real) if keep]
    return TokenAttribution(tokens=tokens, scores=kept, words=group_words(tokens, kept, text), steps=steps,
                            delta=float(delta.abs().max()))


def _real_tokens(inputs: Any, length: int) -> list[bool]:
    mask = inputs.get("attention_mask") if isinstance(inputs, Mapping) else None
    return [bool(v) for v in mask[0].tolist()] if isinstance(mask, Tensor) else [True] * length


def _special(token: str) -> bool:
    return len(token) > 2 and token.startswith("<") and token.endswith(">")


def group_words(tokens: list[str], scores: list[float], text: str | None) -> list[tuple[str, float]]:
    """Words (split at whitespace) and the sum of their tokens' scores, when the tokens spell ``text``
    (bracketed special tokens such as ``<bos>`` aside; an empty token continues a character); else none."""
    if text is None or "".join(t for t in tokens if not _special(t)) != text:
        return []
    words: list[tuple[str, float]] = []
    word, total = "", 0.0
    for token, score in zip(tokens, scores):
        if _special(token) or token.isspace():
            if word:
                words.append((word, total))
            word, total = "", 0.0
            continue
        word, total = word + token, total + score
    if word:
        words.append((word, total))
    return words


def heat_to_array(heat: np.ndarray) -> np.ndarray:
    """The positive part of a heat map scaled to [0, 1] (what the overlay shows)."""
    positive = np.clip(heat, 0, None)
    top = positive.max()
    return positive / top if top > 0 else positive
