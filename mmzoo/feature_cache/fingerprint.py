"""Dataset fingerprints: what identifies a dataset's content for the feature cache.

A dataset may say it itself, cheaply: an optional method ``fingerprint() -> str`` whose value changes
whenever any example could (same fingerprint, same examples at every index). The builtin datasets
have one. For a dataset without it, the fallback reads every example once and hashes the values the
cache depends on (the encoder's batch key and the target): exact, but it costs a pass over the raw
data in each run, so a dataset that is read often should define ``fingerprint``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from mmzoo.content_hash import ABSENT, Unhashable, update


class Unfingerprintable(Exception):
    """An example holds a value the fallback cannot hash (the message says which)."""


def declared_fingerprint(dataset: Any) -> str | None:
    """The dataset's own ``fingerprint()`` (through a ``torch.utils.data.Subset`` of it, with the
    subset's indices), or None when it has none. A value that is not a non-empty string is refused."""
    from mmzoo.data.labels import RelabelledDataset

    if isinstance(dataset, RelabelledDataset):  # evaluation mapped onto a model's labels
        wrapped = declared_fingerprint(dataset.dataset)
        if wrapped is None:
            return None
        # The cache keeps targets too, and these are renumbered: the mapping is part of the content.
        digest = hashlib.sha256(wrapped.encode())
        update(digest, [list(dataset.positions), list(dataset.labels)])
        return "relabelled:" + digest.hexdigest()
    indices = None
    inner = dataset
    if hasattr(inner, "dataset") and hasattr(inner, "indices"):  # torch Subset (max_examples)
        inner, indices = inner.dataset, inner.indices
    if isinstance(inner, RelabelledDataset):
        value = declared_fingerprint(inner)
        if value is None:
            return None
    else:
        method = getattr(inner, "fingerprint", None)
        if not callable(method):
            return None
        value = method()
        if not isinstance(value, str) or not value:
            raise Unfingerprintable(
                f"{type(inner).__name__}.fingerprint() returned {value!r}; it must return a non-empty string"
            )
    if indices is None:
        return value
    digest = hashlib.sha256(value.encode())
    update(digest, list(indices))
    return "subset:" + digest.hexdigest()


def example_fingerprints(dataset: Any, keys: Iterable[str]) -> dict[str, str]:
    """For each batch key, a digest of every example's value there and its target (one pass)."""
    keys = list(keys)
    digests = {key: hashlib.sha256(b"mmzoo-examples-v1") for key in keys}
    for index in range(len(dataset)):
        example = dataset[index]
        if not isinstance(example, Mapping):
            raise Unfingerprintable(f"example {index} is a {type(example).__name__}, not a dict")
        for key in keys:
            digest = digests[key]
            for part in (key, "target"):
                try:
                    update(digest, example.get(part, ABSENT))
                except Unhashable as exc:
                    raise Unfingerprintable(f"example {index}, '{part}': {exc}") from None
    return {key: "examples:" + digest.hexdigest() for key, digest in digests.items()}
