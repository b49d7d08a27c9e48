"""The frozen-encoder feature cache.

When an encoder is frozen and its output for an example is fixed (see
:mod:`mmzoo.feature_cache.eligibility`), the trainer computes that output once per example and keeps it
under the mmzoo cache directory (``<cache>/features``, :mod:`mmzoo.feature_cache.store`); later epochs
and later runs with the same encoder on the same data read it instead of running the encoder
(``data.cache_features: auto | true | false``). Entries are keyed by everything the output depends on
(:mod:`mmzoo.feature_cache.keys`). ``mmzoo cache list`` and ``mmzoo cache clear`` manage them.

The modules that touch torch are imported by the trainer only; ``store`` needs numpy alone.
"""
