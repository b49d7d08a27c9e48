"""The layout of a safetensors file, checked without loading it (importing this does not import torch).

A safetensors file is 8 bytes (little-endian header length ``n``), ``n`` bytes of JSON mapping each
tensor name to its ``dtype``, ``shape`` and ``data_offsets``, then the tensors' bytes back to back.
:func:`read_layout` checks all of it against the file's size, so a truncated, padded or forged file
is refused before anything is allocated or read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mmzoo.errors import MmzooError, WeightsError
from mmzoo.saved import load_json

#: Bytes per element of each safetensors dtype this module can check sizes for.
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit


@dataclass(frozen=True)
class TensorLayout:
    """Where one tensor's bytes are: ``start``/``end`` are offsets in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_layout(path: str | Path, where: str | None = None) -> list[TensorLayout]:
    """The tensors of a safetensors file in file order, after checking the header and that the
    tensors fill the file exactly. Raises :class:`~mmzoo.errors.WeightsError` naming ``where``."""
    path = Path(path)
    where = where or str(path.parent)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size or n > _MAX_HEADER:
            _invalid(path, where, f"{size} bytes, too short for its header")
        try:
            header = load_json(f.read(n))
        except (ValueError, UnicodeDecodeError):
            _invalid(path, where, "its header is not valid JSON")
        except MmzooError as exc:  # nested past the data limits' JSON depth
            _invalid(path, where, f"its header is {exc}")
    if not isinstance(header, dict):
        _invalid(path, where, "its header is not a mapping of tensor names")
    tensors = [_entry(name, info, 8 + n, path, where) for name, info in header.items() if name != "__metadata__"]
    tensors.sort(key=lambda t: (t.start, t.end))
    position = 8 + n
    for t in tensors:
        if t.start != position:
            _invalid(path, where, f"tensor '{t.name}' does not start where the previous one ends")
        position = t.end
    if position != size:
        _invalid(path, where, f"its tensors need {position} bytes but it has {size}")
    return tensors


def _entry(name: str, info: object, base: int, path: Path, where: str) -> TensorLayout:
    try:
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        _invalid(path, where, f"entry {name!r} lacks dtype, shape or data_offsets")
    numbers = [*shape, start, end] if isinstance(shape, list) else None
    if (not isinstance(dtype, str) or numbers is None
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in numbers) or end < start):
        _invalid(path, where, f"entry {name!r} has a malformed dtype, shape or data_offsets")
    if dtype in DTYPE_SIZES and end - start != math.prod(shape) * DTYPE_SIZES[dtype]:
        _invalid(path, where, f"tensor '{name}' of shape {tuple(shape)} {dtype} does not fit its "
                              f"{end - start} bytes")
    return TensorLayout(name, dtype, tuple(shape), base + start, base + end)


def _invalid(path: Path, where: str, problem: str):
    raise WeightsError(f"{where}: {path.name} is not a valid safetensors file ({problem}); it is truncated or "
                       f"corrupted — save, publish or download it again")
