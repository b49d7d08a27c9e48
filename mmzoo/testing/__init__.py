"""Test helpers for mmzoo and for plugin authors.

The conformance kit checks that a part honours the contract the builder and trainer rely on::

    from mmzoo.testing import check_encoder, check_fusion, check_head

    def test_my_encoder():
        check_encoder(MyEncoder, {"output_dim": 32}, modality="image")

``check_dataset`` checks a dataset's items and its optional ``labels``, :func:`check_dataset_fingerprint`
its optional ``fingerprint()``, and :func:`check_logger` checks an experiment logger (the
``mmzoo_register_loggers`` hook).

Importing this package is cheap; torch loads when a part check runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmzoo.testing.conformance import check_encoder, check_fusion, check_head, default_examples
    from mmzoo.testing.conformance_cache import check_dataset_fingerprint
    from mmzoo.testing.dataset_check import check_dataset
    from mmzoo.testing.logger_conformance import check_logger

__all__ = [
    "check_dataset",
    "check_dataset_fingerprint",
    "check_encoder",
    "check_fusion",
    "check_head",
    "check_logger",
    "default_examples",
]


def __getattr__(name: str) -> Any:
    if name == "check_dataset":
        from mmzoo.testing.dataset_check import check_dataset

        return check_dataset
    if name == "check_dataset_fingerprint":
        from mmzoo.testing import conformance_cache

        return conformance_cache.check_dataset_fingerprint
    if name == "check_logger":
        from mmzoo.testing.logger_conformance import check_logger

        return check_logger
    if name in __all__:
        from mmzoo.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'mmzoo.testing' has no attribute {name!r}")
