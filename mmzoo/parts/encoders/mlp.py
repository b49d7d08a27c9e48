"""``mlp``: a multilayer perceptron for fixed-length vectors and tabular features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mmzoo.errors import DatasetError
from mmzoo.parts._common import bad_example, fraction, int_list, positive_int
from mmzoo.parts.base import Encoder
from mmzoo.rawinput import RawInput

PART = "encoder 'mlp'"


class MLPEncoder(Encoder):
    """Vectors of ``in_dim`` numbers -> ``Tensor[B, output_dim]``.

    Each hidden layer is Linear -> GELU -> Dropout; the last layer is a Linear to ``output_dim``
    followed by a LayerNorm, so features of different encoders arrive at the fusion on one scale.
    """

    modality = "vector"

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int] = (128,),
        output_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_dim = positive_int(PART, "in_dim", in_dim)
        self.output_dim = positive_int(PART, "output_dim", output_dim)
        hidden = int_list(PART, "hidden_dims", hidden_dims)
        dropout = fraction(PART, "dropout", dropout)
        layers: list[nn.Module] = []
        width = self.in_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers += [nn.Linear(width, self.output_dim), nn.LayerNorm(self.output_dim)]
        self.net = nn.Sequential(*layers)

    @property
    def raw_input(self) -> RawInput:
        """Vectors of ``in_dim`` numbers (arrays, tensors or lists)."""
        return RawInput("vector", dim=self.in_dim, accepts=("array", "tensor", "list"),
                        description="finite numbers, used as given")

    def preprocess(self, examples: list) -> Tensor:
        """Stack numbers, lists, numpy arrays or tensors of ``in_dim`` values into ``[B, in_dim]``."""
        if not examples:
            raise DatasetError(f"{PART}: preprocess got an empty list of examples.")
        rows = [self._row(i, example) for i, example in enumerate(examples)]
        return torch.from_numpy(np.stack(rows))

    def _row(self, index: int, example: object) -> np.ndarray:
        if isinstance(example, Tensor):
            example = example.detach().cpu().numpy()
        try:
            row = np.asarray(example, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            message = f"expected {self.in_dim} numbers, got {type(example).__name__}"
            raise bad_example(PART, index, message) from exc
        if row.size != self.in_dim:
            raise bad_example(PART, index, f"expected {self.in_dim} numbers (in_dim), got {row.size}")
        if not np.isfinite(row).all():
            raise bad_example(PART, index, "contains NaN or infinite values; impute them first")
        return row

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 2 or inputs.shape[-1] != self.in_dim:
            raise DatasetError(
                f"{PART}: expected input of shape [batch, {self.in_dim}], got {list(inputs.shape)}."
            )
        return self.net(inputs.to(self.net[0].weight.dtype))
