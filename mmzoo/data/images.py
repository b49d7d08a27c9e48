"""Image files: decoded with Pillow under the data limits, every error naming the file.

Importing this module does not import torch (Pillow is imported when a file is read).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mmzoo.data.limits import DataLimits, data_limits
from mmzoo.errors import DatasetError

MODES = ("L", "RGB", "RGBA")


def load_image(path: str | os.PathLike, mode: str | None = None, *,
               limits: DataLimits | Mapping[str, float] | None = None):
    """An image file as a decoded ``PIL.Image.Image`` (the file is closed again).

    ``mode`` converts it ("L", "RGB" or "RGBA"); by default a grey or RGB image keeps its mode and any
    other (palette, CMYK, 16-bit...) becomes RGB. The size in the header is checked against the data
    limits (``limits``: a :class:`~mmzoo.data.limits.DataLimits` or a mapping of overrides; default: those
    in force) before any pixel is decoded. Errors are DatasetErrors naming the file.
    """
    from PIL import Image

    if mode is not None and mode not in MODES:
        raise DatasetError(f"load_image: mode must be None or one of {', '.join(MODES)}, got {mode!r}")
    limits = limits if isinstance(limits, DataLimits) else data_limits(limits)
    path = Path(path)
    if not path.is_file():
        problem = "does not exist" if not path.exists() else "is not a file"
        raise DatasetError(f"image file {path} {problem}")
    try:
        with Image.open(path) as img:  # reads the header only: the size is known before decoding
            limits.check_image(*img.size)
            wanted = mode or (img.mode if img.mode in ("L", "RGB") else "RGB")
            image = img.convert(wanted) if img.mode != wanted else img.copy()
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    except Image.DecompressionBombError as exc:  # over Pillow's own limit, checked as it opens
        raise DatasetError(f"{path}: {exc} (mmzoo's limit is {limits.image_pixels} pixels; see "
                           "mmzoo.data.limits)") from None
    except Exception as exc:  # a hostile file can make any decoder fail in its own way
        raise DatasetError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc
    return image
