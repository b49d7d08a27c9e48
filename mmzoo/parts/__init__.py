"""The core distribution's builtin parts, registered through the same hook as any plugin.

This module is the ``mmzoo`` entry point of the core distribution (``parts = "mmzoo.parts"``).
It imports no torch: factories are lazy ``"module:Attr"`` strings, and the optional base classes
``Encoder``, ``Fusion`` and ``Head`` (see :mod:`mmzoo.parts.base` for the attribute conventions)
load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mmzoo

if TYPE_CHECKING:
    from mmzoo.parts.base import Encoder, Fusion, Head

__all__ = ["ENCODERS", "FUSIONS", "HEADS", "Encoder", "Fusion", "Head", "mmzoo_register_components"]

_ENC = "mmzoo.parts.encoders"

# name -> (factory, modality, description)
ENCODERS: dict[str, tuple[str, str, str]] = {
    "mlp": (f"{_ENC}.mlp:MLPEncoder", "vector",
            "MLP for fixed-length vectors and tabular features (in_dim, hidden_dims, output_dim)"),
    "cnn": (f"{_ENC}.cnn:CNNEncoder", "image",
            "small conv net for images of any size and channel count; pooled + spatial tokens"),
    "byte-gru": (f"{_ENC}.byte_gru:ByteGRUEncoder", "text",
                 "UTF-8 bytes -> embedding -> bidirectional GRU; no tokenizer; pooled + byte tokens"),
    "mel-cnn": (f"{_ENC}.mel_cnn:MelCNNEncoder", "audio",
                "waveform -> log-mel or MFCC (torch) -> conv net, resampling input; pooled + time tokens"),
}

# name -> (factory, description)
FUSIONS: dict[str, tuple[str, str]] = {
    "concat": ("mmzoo.parts.fusions:ConcatFusion", "concatenate pooled features, optionally project to dim"),
    "sum": ("mmzoo.parts.fusions:SumFusion", "project each modality to dim and add"),
    "gated": ("mmzoo.parts.fusions:GatedFusion",
              "gated multimodal unit: learned per-modality, per-feature gates"),
    "attention": ("mmzoo.parts.fusions:AttentionFusion",
                  "attention pooling over modality embeddings with a learned query"),
    "cross-attention": ("mmzoo.parts.fusions:CrossAttentionFusion",
                        "token-level cross-attention between modalities, padding masked (needs tokens)"),
    "bilinear": ("mmzoo.parts.fusions:BilinearFusion",
                 "low-rank multimodal tensor fusion (LMF) of given rank"),
    "film": ("mmzoo.parts.fusions:FiLMFusion", "FiLM: the condition modality scales and shifts the target"),
    "project": ("mmzoo.parts.fusions:ProjectFusion",
                "per-modality projections to dim, kept apart (dict) for contrastive heads"),
}

HEADS: dict[str, tuple[str, str]] = {
    "classification": ("mmzoo.parts.heads:ClassificationHead",
                       "single-label classification: cross-entropy, accuracy and top-k accuracy"),
    "multilabel": ("mmzoo.parts.heads:MultilabelHead", "multi-label classification: BCE, micro F1"),
    "regression": ("mmzoo.parts.heads:RegressionHead", "regression: MSE loss, MSE/MAE/RMSE/R2 metrics"),
    "contrastive": ("mmzoo.parts.contrastive:ContrastiveHead",
                    "CLIP-style symmetric InfoNCE with learned temperature; within-batch recall@k"),
}


@mmzoo.hookimpl
def mmzoo_register_components(registry: Any) -> None:
    """Register every builtin encoder, fusion and head."""
    for name, (factory, modality, description) in ENCODERS.items():
        registry.add_encoder(name, factory, modality=modality, description=description)
    for name, (factory, description) in FUSIONS.items():
        registry.add_fusion(name, factory, description=description)
    for name, (factory, description) in HEADS.items():
        registry.add_head(name, factory, description=description)


def __getattr__(name: str) -> Any:
    if name in ("Encoder", "Fusion", "Head"):
        from mmzoo.parts import base

        return getattr(base, name)
    raise AttributeError(f"module 'mmzoo.parts' has no attribute {name!r}")
