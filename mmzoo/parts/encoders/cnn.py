"""``cnn``: a small convolutional network for images of any size and channel count."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmzoo.data.images import load_image
from mmzoo.data.limits import DataLimits, data_limits
from mmzoo.errors import BuildError, DatasetError
from mmzoo.outputs import EncoderOutput
from mmzoo.parts._common import bad_example, fraction, int_list, positive_int
from mmzoo.parts.base import Encoder
from mmzoo.rawinput import RawInput

PART = "encoder 'cnn'"
_LUMA = (0.299, 0.587, 0.114)


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm does not depend on the batch, so results match across batch sizes and DDP ranks.
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _DownBlock(nn.Sequential):
    """Halve the resolution: strided 3x3 conv, then a 3x3 conv, each with norm and GELU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), _norm(c_out), nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), _norm(c_out), nn.GELU(),
        )


def sincos_2d(height: int, width: int, dim: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Fixed 2-D sine/cosine position codes ``[height * width, dim]`` (zeros pad odd leftovers)."""
    quarter = dim // 4
    codes = torch.zeros(height * width, dim, device=device, dtype=dtype)
    if quarter == 0:
        return codes
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    ay = ys.reshape(-1, 1) * freq
    ax = xs.reshape(-1, 1) * freq
    parts = torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], dim=1)
    codes[:, : 4 * quarter] = parts.to(dtype)
    return codes


class CNNEncoder(Encoder):
    """Images -> tokens ``[B, H'*W', output_dim]`` (one per cell of the final grid) and their mean.

    ``preprocess`` takes image files (a ``str`` or ``pathlib.Path``, read with Pillow under the data
    limits), PIL images, numpy arrays (``HxW``, ``HxWxC`` or ``CxHxW``; uint8 scaled
    from 0..255, floats taken as 0..1) or tensors (``CxHxW`` or ``HxWxC``), adapts the channel
    count (grey <-> RGB, alpha dropped), resizes to ``image_size`` and normalises with
    ``mean``/``std``. With ``image_size=None`` images are kept as they are and must share a size.
    """

    modality = "image"
    provides_tokens = True

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (32, 64, 128),
        output_dim: int = 128,
        image_size: int | Sequence[int] | None = 64,
        mean: float | Sequence[float] = 0.5,
        std: float | Sequence[float] = 0.5,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = positive_int(PART, "in_channels", in_channels)
        self.output_dim = positive_int(PART, "output_dim", output_dim)
        widths = int_list(PART, "channels", channels, allow_empty=False)
        self.image_size = self._check_size(image_size)
        self.mean = self._per_channel("mean", mean)
        self.std = self._per_channel("std", std)
        if any(s <= 0 for s in self.std):
            raise BuildError(f"{PART}: 'std' must be positive, got {std!r}.")
        blocks, width = [], self.in_channels
        for size in widths:
            blocks.append(_DownBlock(width, size))
            width = size
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Conv2d(width, self.output_dim, 1)
        self.dropout = nn.Dropout(fraction(PART, "dropout", dropout))
        self.norm = nn.LayerNorm(self.output_dim)

    @staticmethod
    def _check_size(size: Any) -> tuple[int, int] | None:
        if size is None:
            return None
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        items = int_list(PART, "image_size", size)
        if len(items) != 2:
            raise BuildError(f"{PART}: 'image_size' must be an int or [height, width], got {size!r}.")
        return items[0], items[1]

    def _per_channel(self, name: str, value: Any) -> tuple[float, ...]:
        values = [value] * self.in_channels if isinstance(value, (int, float)) else list(value)
        if len(values) != self.in_channels or not all(isinstance(v, (int, float)) for v in values):
            raise BuildError(
                f"{PART}: '{name}' must be a number or {self.in_channels} numbers (in_channels), "
                f"got {value!r}."
            )
        return tuple(float(v) for v in values)

    @property
    def raw_input(self) -> RawInput:
        """Images (files, PIL, arrays, tensors) resized to ``image_size`` with ``in_channels`` channels."""
        mean, std = (", ".join(f"{v:g}" for v in values) for values in (self.mean, self.std))
        return RawInput("image", size=self.image_size, channels=self.in_channels,
                        accepts=("path", "pil", "array", "tensor"),
                        description=f"scaled to [0, 1], normalised with mean ({mean}) and std ({std})")

    # ---- preprocessing -------------------------------------------------------------------------
    def preprocess(self, examples: list) -> Tensor:
        """Turn images (or image files) into a normalised float tensor ``[B, in_channels, H, W]``."""
        if not examples:
            raise DatasetError(f"{PART}: preprocess got an empty list of examples.")
        images = [self._resize(i, self._to_chw(i, ex)) for i, ex in enumerate(examples)]
        sizes = {tuple(img.shape[1:]) for img in images}
        if len(sizes) > 1:
            raise DatasetError(
                f"{PART}: images have different sizes {sorted(sizes)} and image_size is None; "
                "set image_size (e.g. 64) to resize them."
            )
        batch = torch.stack(images)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (batch - mean) / std

    def _to_chw(self, index: int, example: Any) -> Tensor:
        channels_first = False
        limits = data_limits()
        if isinstance(example, (str, os.PathLike)):  # for an image encoder a string is a file, never text
            try:
                example = load_image(example, limits=limits)
            except DatasetError as exc:
                raise bad_example(PART, index, str(exc)) from None
        if hasattr(example, "convert") and hasattr(example, "mode"):  # a PIL image, without importing PIL
            self._check_pixels(index, limits, *example.size)  # before a lazily opened file is decoded
            mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(self.in_channels)
            example = np.asarray(example.convert(mode) if mode and example.mode != mode else example)
        elif isinstance(example, Tensor):
            example = example.detach().cpu()
            channels_first = True
        if not isinstance(example, (np.ndarray, Tensor)):
            raise bad_example(
                PART, index,
                f"expected an image file path, PIL image, numpy array or tensor, got {type(example).__name__}",
            )
        array = torch.from_numpy(np.array(example)) if isinstance(example, np.ndarray) else example
        if array.dim() == 2:
            array = array.unsqueeze(0)
        elif array.dim() == 3:
            array = self._channels_first(index, array, prefer_first=channels_first)
        else:
            raise bad_example(PART, index, f"expected a 2-D or 3-D image, got shape {list(array.shape)}")
        self._check_pixels(index, limits, array.shape[2], array.shape[1])  # before the float copy
        return self._adapt_channels(index, self._to_unit_float(array))

    @staticmethod
    def _check_pixels(index: int, limits: DataLimits, width: int, height: int) -> None:
        try:
            limits.check_image(width, height)
        except DatasetError as exc:
            raise bad_example(PART, index, str(exc)) from None

    def _channels_first(self, index: int, array: Tensor, *, prefer_first: bool) -> Tensor:
        plausible = {1, 2, 3, 4, self.in_channels}
        first, last = array.shape[0] in plausible, array.shape[-1] in plausible
        if prefer_first and first or not last and first:
            return array
        if last:
            return array.permute(2, 0, 1)
        raise bad_example(
            PART, index,
            f"cannot tell the channel axis of shape {list(array.shape)} (in_channels={self.in_channels})",
        )

    @staticmethod
    def _to_unit_float(array: Tensor) -> Tensor:
        if array.dtype == torch.uint8:
            return array.float() / 255.0
        if array.dtype == torch.uint16:
            return array.float() / 65535.0
        if array.dtype == torch.bool:
            return array.float()
        if not array.is_floating_point():  # other integer types: the usual 0..255 range
            return array.float() / 255.0
        return array.float()

    def _adapt_channels(self, index: int, image: Tensor) -> Tensor:
        have, want = image.shape[0], self.in_channels
        if have == want:
            return image
        if have in (2, 4) and want in (have - 1, 1, 3):  # drop the alpha channel
            image, have = image[:-1], have - 1
        if have == want:
            return image
        if have == 1 and want == 3:
            return image.expand(3, -1, -1)
        if have == 3 and want == 1:
            return (image * torch.tensor(_LUMA).view(3, 1, 1)).sum(0, keepdim=True)
        raise bad_example(PART, index, f"has {have} channels and cannot be converted to in_channels={want}")

    def _resize(self, index: int, image: Tensor) -> Tensor:
        if min(image.shape[1:]) < 1:
            raise bad_example(PART, index, f"image is empty (shape {list(image.shape)})")
        if self.image_size is None or tuple(image.shape[1:]) == self.image_size:
            return image.contiguous()
        resized = F.interpolate(image.unsqueeze(0), size=self.image_size, mode="bilinear",
                                align_corners=False, antialias=True)
        return resized.squeeze(0)

    # ---- model -------------------------------------------------------------------------------------
    def forward(self, inputs: Tensor) -> EncoderOutput:
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise DatasetError(
                f"{PART}: expected images of shape [batch, {self.in_channels}, height, width], "
                f"got {list(inputs.shape)}."
            )
        grid = self.proj(self.blocks(inputs.to(self.proj.weight.dtype)))
        batch, dim, height, width = grid.shape
        cells = grid.flatten(2).transpose(1, 2)  # [B, H*W, D]
        positions = sincos_2d(height, width, dim, grid.device, grid.dtype)
        tokens = self.norm(self.dropout(cells + positions))
        # Pooled and tokens share every parameter, so a fusion that reads only one of them still
        # trains the whole encoder.
        pooled = tokens.mean(dim=1)
        mask = torch.ones(batch, height * width, dtype=torch.bool, device=grid.device)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)
