"""The feature cache in a training run (``data.cache_features``): which encoders, which entries, and
the datasets and collator that read them.

The trainer hands :meth:`FeatureCache.attach` its datasets and the model's collator before it builds
the loaders. For every encoder that may be cached (:mod:`mmzoo.feature_cache.eligibility`) and every
split, the entry for the key (:mod:`mmzoo.feature_cache.keys`) is opened, or built now by one ordered
pass (the ranks of a job wait on the entry's file lock while one of them builds it). ``auto`` caches
what it can and says once what it does not cache and why; ``true`` makes that an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mmzoo.errors import ConfigError
from mmzoo.feature_cache import keys as keying
from mmzoo.feature_cache.build import encode_dataset
from mmzoo.feature_cache.dataset import CachedFeaturesDataset, FeatureCollator
from mmzoo.feature_cache.eligibility import probe_reason, static_reason
from mmzoo.feature_cache.fingerprint import Unfingerprintable, declared_fingerprint, example_fingerprints
from mmzoo.feature_cache.store import FeatureEntry, build_entry, features_root, open_if_sound
from mmzoo.train.config import TrainConfig
from mmzoo.train.precision import Precision


class FeatureCache:
    """The feature cache of one run (one rank). ``info`` (for ``run.json``) says what was cached."""

    def __init__(
        self, model: nn.Module, config: TrainConfig, *, device: torch.device, train_mode: Callable[[], None],
        note: Callable[[str], None],
    ) -> None:
        self.model, self.config, self.device = model, config, device
        self.train_mode, self.note = train_mode, note
        self.info: dict[str, Any] = {"setting": config.data.cache_features, "cached": {}, "not_cached": {}}

    def attach(self, train_set: Any, eval_set: Any | None, collator: Any) -> tuple[Any, Any | None, Any]:
        """The datasets and collator the loaders should use: cached features for the encoders that
        may be cached, the raw examples and the model's collator for the rest."""
        setting = self.config.data.cache_features
        if setting is False:
            return train_set, eval_set, collator
        self.train_mode()  # decide on (and compute in) the mode the encoders train in
        encoders = dict(self.model.encoders.items())
        reasons = {key: static_reason(key, encoder) for key, encoder in encoders.items()}
        if self.config.data.modality_dropout:  # a stored row cannot lose its input batch by batch
            reasons = {key: reason or "data.modality_dropout drops inputs as the model trains"
                       for key, reason in reasons.items()}
        for key, encoder in encoders.items():
            if reasons[key] is None:
                reasons[key] = self._probe(key, encoder, train_set)
        splits = {"train": (self.config.data.train, train_set)}
        if eval_set is not None:
            splits["eval"] = (self.config.data.eval, eval_set)
        fingerprints: dict[str, dict[str, str]] = {}
        for name, (_, dataset) in splits.items():
            wanted = [key for key, reason in reasons.items() if reason is None]
            found, reason = _fingerprints(dataset, wanted)
            if reason is not None:
                reasons.update({key: f"data.{name}: {reason}" for key in wanted})
            fingerprints[name] = found
        cached = [key for key, reason in reasons.items() if reason is None]
        self._report(setting, reasons, encoders)
        if not cached:
            return train_set, eval_set, collator
        tokens = bool(getattr(self.model.fusion, "requires_tokens", False))
        entries: dict[str, dict[str, FeatureEntry]] = {name: {} for name in splits}
        for key in cached:
            weights = keying.weights_digest(encoders[key])
            for name, (split, dataset) in splits.items():
                entries[name][key] = self._entry(key, encoders[key], weights, name, split, dataset,
                                                 fingerprints[name][key], tokens)
        self._summary(entries)
        dtypes = {key: entries["train"][key].dtype for key in cached}
        wrapped = [self._wrap(dataset, entries[name], tokens) for name, (_, dataset) in splits.items()]
        return wrapped[0], (wrapped[1] if eval_set is not None else None), FeatureCollator(collator, dtypes)

    # --- deciding -------------------------------------------------------------------------------------

    def _probe(self, key: str, encoder: nn.Module, dataset: Any) -> str | None:
        values = []
        for index in range(min(len(dataset), 4)):
            example = dataset[index]
            if key not in example:
                return f"example {index} of data.train has no '{key}'"
            values.append(example[key])
        return probe_reason(key, encoder, values, self.device)

    def _report(self, setting: Any, reasons: dict[str, str | None], encoders: dict[str, nn.Module]) -> None:
        """Say once what is not cached and why (a trained encoder is not news unless nothing is cached);
        with ``true``, a frozen encoder that cannot be cached, or no encoder at all, is an error."""
        missing = {key: reason for key, reason in reasons.items() if reason is not None}
        self.info["not_cached"] = missing
        frozen = {key for key, encoder in encoders.items() if not any(p.requires_grad for p in encoder.parameters())}
        notable = {key: reason for key, reason in missing.items() if key in frozen}
        nothing = len(missing) == len(reasons)
        listing = "; ".join(f"encoders.{key}: {reason}" for key, reason in notable.items())
        if setting is True and (notable or nothing):
            what = listing or "no encoder is frozen (optim.freeze names the parts to freeze)"
            raise ConfigError(
                f"data.cache_features: true, but {what}; set data.cache_features to auto or false"
            )
        if nothing:
            self.note(f"feature cache: off ({listing or 'no encoder is frozen'})")
        elif notable:
            self.note(f"feature cache: not for {listing}")

    # --- entries --------------------------------------------------------------------------------------

    def _entry(self, key: str, encoder: nn.Module, weights: str, split_name: str, split: Any, dataset: Any,
               fingerprint: str, tokens: bool) -> FeatureEntry:
        part = self.model.typed_spec.encoders[key]
        identity = keying.encoder_identity(key, part.name, part.params)
        data = keying.data_identity(split, fingerprint)

        def key_for(with_tokens: bool) -> dict[str, Any]:
            runtime = keying.runtime_identity(precision=self.config.precision, device=self.device, tokens=with_tokens)
            return keying.make_key(identity, weights, data, runtime)

        root = features_root()
        for with_tokens in ([True] if tokens else [False, True]):  # an entry with tokens serves pooled-only too
            entry = open_if_sound(root / keying.entry_name(key_for(with_tokens)))
            if entry is not None and entry.examples == len(dataset):
                self._record(key, split_name, entry, built=False)
                return entry
        wanted = key_for(tokens)
        name = keying.entry_name(wanted)
        self.note(f"feature cache: encoding data.{split_name} ({len(dataset):,} examples) with encoders.{key} "
                  f"into {root / name}")
        data_config, precision = self.config.data, Precision(self.config.precision, self.device)

        def fill(writer):
            column = encode_dataset(
                dataset, {key: encoder}, {key: writer},
                batch_size=data_config.eval_batch_size or data_config.batch_size,
                num_workers=data_config.num_workers, device=self.device, autocast=precision.autocast,
            )
            return column.array(), column.absent()

        entry, built = build_entry(name, wanted, fill, tokens=tokens, root=root)
        self._record(key, split_name, entry, built=built)
        return entry

    def _record(self, key: str, split_name: str, entry: FeatureEntry, *, built: bool) -> None:
        self.info["cached"].setdefault(key, {})[split_name] = {"entry": entry.name, "built": built}
        if built:
            self.note(f"feature cache: encoders.{key} on data.{split_name}: {entry.examples:,} examples encoded in "
                      f"{entry.meta.get('build_seconds', 0):.1f} s ({_megabytes(entry.nbytes)})")

    def _summary(self, entries: dict[str, dict[str, FeatureEntry]]) -> None:
        for key in entries["train"]:
            read = [(name, split[key]) for name, split in entries.items()
                    if not self.info["cached"][key][name]["built"]]
            if read:
                shown = ", ".join(f"data.{name} ({entry.examples:,} examples)" for name, entry in read)
                size = sum(entry.nbytes for _, entry in read)
                self.note(f"feature cache: encoders.{key} reads {shown} from the cache ({_megabytes(size)})")

    def _wrap(self, dataset: Any, entries: dict[str, FeatureEntry], tokens: bool) -> CachedFeaturesDataset:
        every_key = set(entries) == set(self.model.encoders.keys())
        targets_from = next((e for e in entries.values() if e.has_targets or e.targets_absent), None)
        return CachedFeaturesDataset(
            dataset, entries, tokens={key: tokens for key in entries},
            targets_from=targets_from, read_examples=not every_key,
        )


def _fingerprints(dataset: Any, keys: list[str]) -> tuple[dict[str, str], str | None]:
    if not keys:
        return {}, None
    try:
        declared = declared_fingerprint(dataset)
        if declared is not None:
            return {key: "dataset:" + declared for key in keys}, None
        return example_fingerprints(dataset, keys), None
    except Unfingerprintable as exc:
        return {}, f"its content cannot be fingerprinted ({exc})"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 or size == 0 else f"{math.ceil(size / 1024)} kB"
