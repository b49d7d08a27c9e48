"""A fast path for timm's eval transform: PIL resizing per image, tensor conversion once per batch.

timm's eval transform is ``Resize -> CenterCrop -> ToTensor -> Normalize``, called image by image.
:class:`BatchedEvalTransform` runs the PIL steps per image and the rest once for the whole batch,
with the very same arithmetic (bit-identical results). A grey image bound for an RGB model is
resized while still grey and copied into three channels afterwards: PIL resizes each band on its
own with the same filter, so this equals resizing the RGB conversion, at a third of the work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import transforms as T

# Steps that act on each band alike and never look at colour (safe to run on a grey image).
_GEOMETRIC = (T.Resize, T.CenterCrop)


class BatchedEvalTransform:
    """``transform`` applied to a list of PIL images, giving ``[B, C, H, W]`` (see the module docstring)."""

    def __init__(self, steps: list[Callable], mean: Tensor, std: Tensor, channels: int) -> None:
        self.steps = steps
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)
        self.channels = channels

    @classmethod
    def from_transform(cls, transform: object, channels: int) -> BatchedEvalTransform | None:
        """The fast path for ``transform``, or None when it is not a plain resize/crop/tensor/normalize."""
        steps = getattr(transform, "transforms", None)
        if type(transform) is not T.Compose or not steps or len(steps) < 2:
            return None
        *geometric, to_tensor, normalize = steps
        if not all(type(step) in _GEOMETRIC for step in geometric):
            return None
        if not isinstance(to_tensor, T.ToTensor) or type(to_tensor).__call__ not in _TO_TENSOR_CALLS:
            return None
        if type(normalize) is not T.Normalize or normalize.inplace:
            return None
        dtype = torch.get_default_dtype()
        mean = torch.as_tensor(normalize.mean, dtype=dtype)
        std = torch.as_tensor(normalize.std, dtype=dtype)
        if mean.numel() != channels or std.numel() != channels or bool((std == 0).any()):
            return None  # torchvision's own error (or broadcasting) decides these cases
        return cls(list(geometric), mean, std, channels)

    def __call__(self, images: list[Image.Image]) -> Tensor | None:
        """The batch, or None when the images do not share one size after the steps (the caller's
        per-image path then reports it)."""
        arrays = []
        for image in images:
            for step in self.steps:
                image = step(image)
            arrays.append(np.asarray(image))
        if len({a.shape for a in arrays}) != 1:
            return None
        batch = torch.from_numpy(np.stack(arrays))  # [B, H, W] (grey) or [B, H, W, C]
        batch = batch.unsqueeze(1) if batch.dim() == 3 else batch.permute(0, 3, 1, 2).contiguous()
        # ToTensor's arithmetic: uint8 -> default float dtype, divided by 255; then Normalize's.
        batch = batch.to(dtype=torch.get_default_dtype()).div(255)
        if batch.shape[1] != self.channels:  # grey kept grey for an RGB model
            batch = batch.expand(-1, self.channels, -1, -1)
        return batch.sub(self.mean).div_(self.std)


def _to_tensor_calls() -> tuple[Callable, ...]:
    calls: list[Callable] = [T.ToTensor.__call__]
    try:
        from timm.data.transforms import MaybeToTensor
    except ImportError:  # pragma: no cover - older timm
        return tuple(calls)
    calls.append(MaybeToTensor.__call__)
    return tuple(calls)


_TO_TENSOR_CALLS = _to_tensor_calls()

