"""The conformance check of an encoder's optional ``raw_input`` (a :class:`mmzoo.RawInput`).

An encoder without ``raw_input`` passes. One with it must hold a ``RawInput`` whose ``kind`` agrees
with the encoder's ``modality``, whose ``size``/``channels`` (images) and ``dim`` (vectors) are what
``preprocess`` produces, and, when it ``accepts`` paths, whose ``preprocess`` gives a file written to
disk exactly what it gives the decoded value (for a ``str`` and a ``pathlib.Path``), and refuses a
missing file with an :class:`~mmzoo.MmzooError` naming it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmzoo.errors import MmzooError
from mmzoo.rawinput import RawInput
from mmzoo.testing._conformance_checks import assert_close

MEDIA = ("image", "audio")


def check_raw_input(encoder: Any, label: str, atol: float = 1e-5) -> RawInput | None:
    """Check ``encoder.raw_input`` (see the module docstring); returns it (None when the encoder has none)."""
    raw = getattr(encoder, "raw_input", None)
    if raw is None:
        return None
    assert isinstance(raw, RawInput), (
        f"{label}: raw_input must be a mmzoo.RawInput (kind, size, channels, sample_rate, ...), got {type(raw)}"
    )
    modality = getattr(encoder, "modality", None)
    if isinstance(modality, str):
        assert raw.kind == modality, (
            f"{label}: raw_input.kind is {raw.kind!r} but the encoder's modality is {modality!r}"
        )
    _check_shapes(encoder, raw, label)
    if raw.accepts_paths:
        assert raw.kind in MEDIA, (
            f"{label}: raw_input accepts 'path' for kind {raw.kind!r}; the kit checks paths for image and audio"
        )
        _check_paths(encoder, raw, label, atol)
    return raw


def _check_shapes(encoder: Any, raw: RawInput, label: str) -> None:
    from mmzoo.testing.conformance import default_examples

    if raw.kind == "image" and (raw.size or raw.channels):
        inputs = encoder.preprocess(default_examples("image", 2))
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            if raw.size:
                assert tuple(inputs.shape[-2:]) == raw.size, (
                    f"{label}: raw_input.size is {raw.size} but preprocess gives images of {tuple(inputs.shape[-2:])}"
                )
            if raw.channels:
                assert inputs.shape[1] == raw.channels, (
                    f"{label}: raw_input.channels is {raw.channels} but preprocess gives {inputs.shape[1]}"
                )
    if raw.kind == "vector" and raw.dim:
        inputs = encoder.preprocess(default_examples("vector", 2, in_dim=raw.dim))
        if isinstance(inputs, torch.Tensor):
            assert inputs.shape[-1] == raw.dim, (
                f"{label}: raw_input.dim is {raw.dim} but preprocess gives vectors of {inputs.shape[-1]}"
            )


def _check_paths(encoder: Any, raw: RawInput, label: str, atol: float) -> None:
    was_training = encoder.training
    encoder.eval()  # no training-time augmentation: the two forms must give the same input
    try:
        _compare_path_and_value(encoder, raw, label, atol)
    finally:
        encoder.train(was_training)


def _compare_path_and_value(encoder: Any, raw: RawInput, label: str, atol: float) -> None:
    import mmzoo

    with tempfile.TemporaryDirectory(prefix="mmzoo-raw-input-") as folder:
        folder = Path(folder)
        if raw.kind == "image":
            from PIL import Image

            path = folder / "example.png"
            pixels = np.random.default_rng(0).integers(0, 256, (30, 22, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
            decoded = mmzoo.load_image(path)
        else:
            from mmzoo.data.audio import write_wav

            path = folder / "example.wav"
            rate = raw.sample_rate or 16000
            t = np.arange(rate // 2) / rate
            write_wav(path, 0.4 * np.sin(2 * np.pi * 330 * t) + 0.01 * np.cos(2 * np.pi * 50 * t), rate)
            decoded = mmzoo.load_audio(path)
        expected = encoder.preprocess([decoded])
        for form in (str(path), path):
            got = encoder.preprocess([form])
            assert_close(expected, got, label, f"preprocess([{type(form).__name__} path]) vs the decoded file", atol)
        missing = folder / "missing.png"
        try:
            encoder.preprocess([str(missing)])
        except MmzooError as exc:
            assert "missing.png" in str(exc), f"{label}: preprocess of a missing file must name it; said {exc}"
        else:
            raise AssertionError(f"{label}: preprocess accepted a path to a file that does not exist")
