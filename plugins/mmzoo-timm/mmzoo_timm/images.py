"""Raw image examples (image files, PIL images, numpy arrays) to PIL images in the mode a model takes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from mmzoo import data_limits, load_image
from mmzoo.errors import DatasetError

MODES = {1: "L", 3: "RGB"}


def _check_pixels(width: int, height: int, where: str) -> None:
    try:
        data_limits().check_image(width, height)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def _array_to_pil(array: np.ndarray, where: str) -> Image.Image:
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # CxHxW -> HxWxC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise DatasetError(
            f"{where}: expected an image array HxW, HxWx1, HxWx3 or HxWx4 (or CxHxW), "
            f"got shape {tuple(array.shape)}"
        )
    _check_pixels(array.shape[1], array.shape[0], where)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if array.size and (np.nanmin(array) < 0.0 or np.nanmax(array) > 1.0):
            raise DatasetError(
                f"{where}: float image values must lie in [0, 1], got "
                f"[{np.nanmin(array):.3g}, {np.nanmax(array):.3g}]; scale them to [0, 1] or "
                f"pass uint8 arrays (0..255)"
            )
        array = np.round(np.nan_to_num(array) * 255.0).astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DatasetError(
            f"{where}: unsupported image dtype {array.dtype}; use uint8 (0..255) or floats in [0, 1]"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def to_pil(example: Any, channels: int, where: str, *, keep_grey: bool = False) -> Image.Image:
    """Return ``example`` as a PIL image with ``channels`` channels (grey <-> RGB, alpha dropped).

    ``keep_grey`` leaves a grey (``L``) image grey even for 3 channels (the caller converts later).
    """
    if channels not in MODES:
        raise DatasetError(
            f"{where}: images can be prepared for 1 or 3 input channels, the model "
            f"takes {channels}; pass in_chans 1 or 3"
        )
    if isinstance(example, (str, os.PathLike)):  # for an image encoder a string is a file, never text
        try:
            image = load_image(example)
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
    elif isinstance(example, Image.Image):
        _check_pixels(*example.size, where)  # before a lazily opened file is decoded
        image = example
    elif isinstance(example, np.ndarray):
        image = _array_to_pil(example, where)
    elif type(example).__module__.startswith("torch"):
        image = _array_to_pil(example.detach().cpu().numpy(), where)
    else:
        raise DatasetError(
            f"{where}: expected an image file path, a PIL image or a numpy array, got {type(example).__name__}"
        )
    mode = MODES[channels]
    if image.mode == mode or (keep_grey and image.mode == "L"):
        return image
    return image.convert(mode)  # alpha is dropped
