"""Plain containers passed between parts: what an encoder returns and what a model returns.

Importing this module does not import torch; the fields hold tensors at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class EncoderOutput:
    """What an encoder gives the fusion.

    ``pooled`` is ``[B, D]``; ``tokens`` (optional) is ``[B, T, D]`` with ``mask`` ``[B, T]``
    (true where a token is real, false for padding). ``D`` equals the encoder's ``output_dim``.
    """

    pooled: Tensor
    tokens: Tensor | None = None
    mask: Tensor | None = None


@dataclass
class ModelOutput:
    """What a model returns for a batch.

    ``outputs`` is the head's output; ``loss`` is set when the batch had a ``"target"`` (or the
    head needs none, like ``contrastive``); ``fused`` is the fusion's output and ``features``
    each encoder's :class:`EncoderOutput` by batch key.
    """

    outputs: Any
    loss: Tensor | None = None
    fused: Any = None
    features: dict[str, EncoderOutput] | None = None
