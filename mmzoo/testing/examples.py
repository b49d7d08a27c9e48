"""Raw example inputs per modality for the conformance kit (:func:`default_examples`)."""

from __future__ import annotations

import numpy as np


def default_examples(modality: str, count: int = 3, *, in_dim: int | None = None) -> list:
    """Raw examples for a modality: "image", "text", "audio" or "vector" (needs ``in_dim``).

    Images come in different sizes and types (uint8 and float arrays, a PIL image when Pillow is
    installed); texts and waveforms (16 kHz float32) have different lengths, to exercise padding.
    """
    rng = np.random.default_rng(0)
    if modality == "image":
        sizes = [(32, 40), (24, 24), (20, 28), (36, 30)]
        images: list = []
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            if i % 3 == 1:
                images.append(rng.random((h, w, 3), dtype=np.float32))
            else:
                images.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        try:
            from PIL import Image

            if count >= 3:
                images[2] = Image.fromarray(rng.integers(0, 256, (28, 20, 3), dtype=np.uint8), mode="RGB")
        except ImportError:
            pass
        return images
    if modality == "text":
        texts = ["a photo of a cat on a mat", "ok", "Zwei Hunde spielen im Schnee, schön!", "the end"]
        return [texts[i % len(texts)] for i in range(count)]
    if modality == "audio":
        clips = []
        for i in range(count):
            n = 16000 * (2 + i % 3) // 4
            t = np.arange(n, dtype=np.float32) / 16000
            tone = 0.5 * np.sin(2 * np.pi * (220 * (i + 1)) * t)
            clips.append((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))
        return clips
    if modality == "vector":
        assert in_dim, "default vector examples need in_dim (the encoder's 'in_dim' attribute or argument)"
        return [rng.standard_normal(in_dim).astype(np.float32) for _ in range(count)]
    raise AssertionError(
        f"no default examples for modality {modality!r}; pass examples= (a list of raw inputs) "
        "or one of the modalities image, text, audio, vector"
    )
