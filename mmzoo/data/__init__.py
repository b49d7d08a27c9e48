"""Datasets that ship with mmzoo, registered through the ``mmzoo`` plugin hook like any part.

Build one with ``mmzoo.create_dataset(name, split="train", **params)``. Every dataset is sized and
indexable; its items are example dicts holding one raw value per batch key plus ``"target"``:

- image: ``numpy.ndarray`` uint8, ``[H, W]`` (grayscale) or ``[H, W, 3]`` (RGB);
- audio: ``{"array": numpy float32 [num_samples] mono in [-1, 1], "sampling_rate": int}``;
- text: ``str``;
- vector (tabular features): ``numpy.ndarray`` float32 ``[D]``;
- target: ``int`` class index, ``float``, or ``list[float]`` (multi-label / multi-output).

A dataset may name its targets with a ``labels`` attribute (optional): a sequence of strings in
target index order — class names for class indices and multi-hot vectors, output names for
regression values — or None. The trainer stores them in the model it saves (``model.labels``), and
evaluation maps a dataset's targets to the model's by name (:mod:`mmzoo.data.labels`), so a file
holding only some of the classes is scored correctly. Every builtin dataset sets it.

Importing this module is cheap: the datasets are registered as lazy ``"module:attribute"`` factories.
"""

from __future__ import annotations

import mmzoo

DATASETS: dict[str, tuple[str, str]] = {
    "manifest": (
        "mmzoo.data.manifest:manifest",
        "your own data: a CSV/TSV/JSONL file, one row per example (image/audio paths, text, target)",
    ),
    "av-digits": (
        "mmzoo.data.avdigits:av_digits",
        "audio-visual digits (AV-MNIST style): noisy MNIST images + noisy eSpeak NG speech, 10 classes",
    ),
    "digit-captions": (
        "mmzoo.data.captions:digit_captions",
        "image-text pairs: MNIST digits with captions describing their class and handwriting style",
    ),
    "sklearn-digits": (
        "mmzoo.data.tabular:sklearn_digits",
        "scikit-learn's 1,797 8x8 digits as image + vector (pixel intensities) views, 10 classes",
    ),
}


@mmzoo.hookimpl
def mmzoo_register_components(registry) -> None:
    """Register mmzoo's builtin datasets."""
    for name, (factory, description) in DATASETS.items():
        registry.add_dataset(name, factory, description=description)
