"""Raw inputs named on a command line (``KEY=VALUE``), read into one example dict for a model.

By the modality of the encoder that reads ``KEY``: an image is a file Pillow opens (size checked against
the data limits before decoding), audio a PCM WAV file, text the value itself (``@FILE`` reads a UTF-8
file), a vector numbers separated by commas (or a JSON list). An input not named is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmzoo.errors import DatasetError, MmzooError, did_you_mean


def parse_pairs(pairs: Sequence[str], keys: Sequence[str], flag: str = "--input") -> dict[str, str]:
    """``["image=a.png", ...]`` -> ``{"image": "a.png"}``, each key one of ``keys``, at most once."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MmzooError(f"{flag} {pair!r}: expected KEY=VALUE with KEY one of {', '.join(keys)}")
        if key not in keys:
            raise MmzooError(f"{flag} {pair!r}: the model has no input '{key}'; its inputs are "
                             f"{', '.join(keys)}.{did_you_mean(key, keys)}")
        if key in out:
            raise MmzooError(f"{flag}: '{key}' is given twice")
        out[key] = value
    if not out:
        raise MmzooError(f"give at least one {flag} KEY=VALUE (the model's inputs: {', '.join(keys)})")
    return out


def read_inputs(pairs: Mapping[str, str], modalities: Mapping[str, str | None]) -> dict[str, Any]:
    """One example from ``{key: value}``, each value read as its encoder's modality says."""
    return {key: _read(key, value, modalities.get(key)) for key, value in pairs.items()}


def _read(key: str, value: str, modality: str | None) -> Any:
    where = f"--input {key}"
    if modality == "image":
        return _image(Path(value).expanduser(), where)
    if modality == "audio":
        from mmzoo.data.audio import load_audio

        path = _file(Path(value).expanduser(), where)
        try:
            return load_audio(path)  # the encoder resamples to its own rate
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
    if modality == "text":
        if value.startswith("@"):
            path = _file(Path(value[1:]).expanduser(), where)
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DatasetError(f"{where}: cannot read {path} as UTF-8 text ({exc})") from None
        return value
    if modality == "vector":
        try:
            numbers = json.loads(value) if value.lstrip().startswith("[") else [float(v) for v in value.split(",")]
            return np.asarray(numbers, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{where}: expected numbers like 0.5,1,2 or [0.5, 1, 2], got {value!r}") from exc
    return value


def _file(path: Path, where: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{where}: {path} is not a file")
    return path


def _image(path: Path, where: str) -> np.ndarray:
    from mmzoo.data.images import load_image

    _file(path, where)
    try:
        return np.asarray(load_image(path))  # grey and RGB keep their mode, anything else becomes RGB
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
