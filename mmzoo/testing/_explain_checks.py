"""Conformance checks of an encoder's optional explanation hooks (see :mod:`mmzoo.explain.within`).

``input_embeddings()`` must return the module that embeds the encoder's token ids and that its forward
actually runs (explanations attribute through that module's output); ``token_labels(ids)`` must give
one string per id. Encoders without them are not checked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmzoo.outputs import EncoderOutput


def check_explain_hooks(encoder: nn.Module, inputs: Any, label: str) -> None:
    """Check ``input_embeddings`` and ``token_labels`` when ``encoder`` defines them."""
    from mmzoo.explain.within import token_ids

    ids = token_ids(inputs)
    layer_of = getattr(encoder, "input_embeddings", None)
    if layer_of is not None:
        assert callable(layer_of), f"{label}: input_embeddings must be a method returning the embedding module"
        layer = layer_of()
        assert isinstance(layer, nn.Module), (
            f"{label}: input_embeddings() must return the torch.nn.Module that embeds token ids, "
            f"got {type(layer).__name__}"
        )
        assert ids is not None, (
            f"{label}: input_embeddings() is defined but preprocess gives no integer token ids [B, T] "
            "(a tensor or an 'input_ids' entry) for it to embed"
        )
        _check_embeddings_reach_output(encoder, layer, inputs, ids, label)
    labels_of = getattr(encoder, "token_labels", None)
    if labels_of is not None and ids is not None:
        assert callable(labels_of), f"{label}: token_labels must be a method taking a list of token ids"
        row = ids[0].tolist()
        labels = labels_of(row)
        assert isinstance(labels, list) and all(isinstance(t, str) for t in labels), (
            f"{label}: token_labels(ids) must return a list of str, got {type(labels).__name__}"
        )
        assert len(labels) == len(row), (
            f"{label}: token_labels(ids) gave {len(labels)} labels for {len(row)} ids; it must give one per id"
        )


def _check_embeddings_reach_output(encoder: nn.Module, layer: nn.Module, inputs: Any, ids: Tensor, label: str) -> None:
    """The layer runs once per forward on ``ids``' shape, and the pooled features depend on its output."""
    seen: list[Tensor] = []

    def keep(module: nn.Module, args: Any, output: Tensor) -> Tensor:
        output = output.detach().requires_grad_(True)
        seen.append(output)
        return output

    was_training = encoder.training
    encoder.eval()
    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            out = encoder(inputs)
    finally:
        handle.remove()
        encoder.train(was_training)
    assert seen, f"{label}: input_embeddings() returned a module that forward(preprocess(examples)) never runs"
    embedded = seen[0]
    assert tuple(embedded.shape[:2]) == tuple(ids.shape), (
        f"{label}: input_embeddings() output has shape {list(embedded.shape)}; expected [B, T, D] for token ids "
        f"of shape {list(ids.shape)}"
    )
    pooled = (out.pooled if isinstance(out, EncoderOutput) else out).float()
    # random weights: a plain sum can be constant (a final LayerNorm's outputs sum to its bias)
    weights = torch.randn(pooled.shape, generator=torch.Generator().manual_seed(0)).to(pooled.device)
    (grad,) = torch.autograd.grad((pooled * weights).sum(), embedded, allow_unused=True)
    assert grad is not None and bool(grad.abs().sum() > 0), (
        f"{label}: the features do not depend on the output of input_embeddings(); it must return the layer "
        "whose output the encoder reads"
    )
