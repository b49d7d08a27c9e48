"""Typed content hashing of plain values: numbers, strings, bytes, numpy arrays, tensors, PIL images,
and dicts, lists and tuples of them. ``1``, ``1.0``, ``"1"`` and ``True`` hash differently.

Used for dataset fingerprints (:mod:`mmzoo.feature_cache.fingerprint`); imports numpy only.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np


class Unhashable(Exception):
    """A value of a type :func:`update` does not know (the message names it)."""


def content_digest(*values: Any) -> str:
    """SHA-256 (hex) of ``values``, fed in order through :func:`update`."""
    digest = hashlib.sha256()
    for value in values:
        update(digest, value)
    return digest.hexdigest()


ABSENT = object()
"""Stands for a missing value (a key an example does not have)."""


def update(digest: Any, value: Any) -> None:
    """Feed ``value`` into ``digest``, typed (``1``, ``1.0``, ``"1"`` and ``True`` all differ)."""
    if value is ABSENT:
        digest.update(b"A")
    elif value is None:
        digest.update(b"N")
    elif isinstance(value, bool | np.bool_):
        digest.update(b"B1" if value else b"B0")
    elif isinstance(value, int | np.integer):
        digest.update(b"I" + str(int(value)).encode() + b";")
    elif isinstance(value, float | np.floating):
        digest.update(b"F" + struct.pack("<d", float(value)) + np.dtype(type(value)).str.encode())
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        digest.update(b"S" + struct.pack("<q", len(data)) + data)
    elif isinstance(value, bytes | bytearray):
        digest.update(b"Y" + struct.pack("<q", len(value)) + bytes(value))
    elif isinstance(value, np.ndarray):
        _update_array(digest, value)
    elif isinstance(value, Mapping):
        digest.update(b"D" + struct.pack("<q", len(value)))
        for key in sorted(value, key=str):
            update(digest, str(key))
            update(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(b"L" + struct.pack("<q", len(value)))
        for item in value:
            update(digest, item)
    elif _is_pil_image(value):
        digest.update(b"P" + f"{value.mode}|{value.size}".encode())
        digest.update(value.tobytes())
    elif _is_tensor(value):
        tensor = value.detach().cpu().contiguous()
        digest.update(b"T" + f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(memoryview(tensor.reshape(-1).view(torch_uint8()).numpy()))
    else:
        raise Unhashable(f"cannot hash a {type(value).__name__}")


def _update_array(digest: Any, array: np.ndarray) -> None:
    if array.dtype == object:
        digest.update(b"O" + struct.pack("<q", array.size))
        for item in array.reshape(-1):
            update(digest, item)
        return
    array = np.ascontiguousarray(array)
    digest.update(b"R" + f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(memoryview(array).cast("B"))


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "tobytes") and hasattr(value, "mode")


def torch_uint8() -> Any:
    import torch

    return torch.uint8


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")
