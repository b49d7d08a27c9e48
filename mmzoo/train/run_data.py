"""The data a run trains on, wired to its model: the modality dropout the config asks for, the
feature cache of frozen encoders, the data checks against the model, and this rank's loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mmzoo.train.config import TrainConfig
from mmzoo.train.data import Loaders, build_loaders
from mmzoo.train.datacheck import check_training_data
from mmzoo.train.distributed import DistContext
from mmzoo.train.modality_dropout import ModalityDropout

if TYPE_CHECKING:
    from mmzoo.feature_cache.plan import FeatureCache


def build_run_data(
    model: Any, config: TrainConfig, ctx: DistContext, *, train_mode: Callable[[], None], note: Callable[[str], None]
) -> tuple[FeatureCache, Loaders]:
    """The run's feature cache and loaders. Modality dropout decides dropped inputs per batch as the
    model trains, so with it the loaders read the examples, not cached features (``note`` says so
    where ``data.cache_features: auto`` would have cached a frozen encoder)."""
    from mmzoo.feature_cache.plan import FeatureCache

    collator = model.collator
    device = ctx.device
    dropout = None
    if config.data.modality_dropout:
        dropout = ModalityDropout(config.data.modality_dropout, list(collator.preprocessors), fusion=model.fusion)
    feature_cache = FeatureCache(model, config, device=device, train_mode=train_mode, note=note)
    loaders = build_loaders(
        config.data,
        collator,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        pin_memory=device.type == "cuda",
        modality_dropout=dropout,
        check=lambda splits: check_training_data(model, splits, note),
        prepare=feature_cache.attach,
    )
    return feature_cache, loaders
