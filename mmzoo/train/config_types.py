"""The validated training config as dataclasses: :class:`TrainConfig` and its sections.

Built only by the schema (:mod:`mmzoo.train.run_schema`) after validation; import them from
:mod:`mmzoo.train.config`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from mmzoo.errors import ConfigError, MmzooError


@dataclass
class ModelConfig:
    """Which model to train: a ``name`` (registry name, ``hf-hub:org/repo``, a directory or a YAML
    file) with ``overrides``, or an inline ``spec`` (encoders, fusion, head)."""

    name: str | None = None
    spec: dict[str, Any] | None = None
    pretrained: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        if self.spec is not None:
            return {**copy.deepcopy(self.spec), "pretrained": self.pretrained}
        return {"name": self.name, "pretrained": self.pretrained, "overrides": copy.deepcopy(self.overrides)}

    def build(self, device: Any = None) -> Any:
        """The model this section names (``mmzoo.create_model``, on ``device``: ``"meta"`` for a skeleton);
        errors are prefixed with ``model:``."""
        import mmzoo

        try:
            if self.spec is not None:
                return mmzoo.create_model(self.spec, device=device)
            return mmzoo.create_model(self.name, pretrained=self.pretrained, device=device, **self.overrides)
        except MmzooError as exc:
            raise type(exc)(f"model: {exc}") from None


@dataclass
class SplitConfig:
    """One dataset split: ``mmzoo.create_dataset(dataset, split=split, **params)``."""

    dataset: str
    split: str
    params: dict[str, Any] = field(default_factory=dict)
    max_examples: int | None = None


@dataclass
class DataConfig:
    train: SplitConfig
    eval: SplitConfig | None
    batch_size: int
    eval_batch_size: int | None = None
    num_workers: int = 0
    prefetch_factor: int | None = None
    persistent_workers: bool = True
    shuffle: bool = True
    drop_last: bool = False
    modality_dropout: dict[str, float] = field(default_factory=dict)
    cache_features: str | bool = "auto"


@dataclass
class OptimConfig:
    name: str
    lr: float
    weight_decay: float
    betas: tuple[float, float] | None
    eps: float | None
    momentum: float | None
    nesterov: bool | None
    decay_bias_and_norm: bool
    lr_multipliers: dict[str, float]
    freeze: list[str]
    warmup_steps: int
    schedule: str
    min_lr_ratio: float
    epochs: int | None
    steps: int | None
    grad_accum: int
    clip_grad_norm: float | None
    fused: str | bool = "auto"


@dataclass
class DDPConfig:
    """Options of ``DistributedDataParallel`` (used when there are several ranks)."""

    find_unused_parameters: str | bool = "auto"
    gradient_as_bucket_view: bool = True
    static_graph: bool = False
    bucket_cap_mb: float = 25.0


@dataclass
class FSDPConfig:
    """Options of FSDP2 (``strategy: fsdp``)."""

    shard: str | list[str] = "auto"
    cpu_offload: bool = False
    reshard_after_forward: bool = True


@dataclass
class DistributedConfig:
    """How the ranks of a job wait for each other, whatever the strategy."""

    timeout: float = 300.0


@dataclass
class CompileConfig:
    backend: str = "inductor"
    mode: str | None = None
    dynamic: bool | None = None
    fullgraph: bool = False
    eval: bool = False


@dataclass
class TrainConfig:
    """A validated training config; :data:`~mmzoo.train.config.SCHEMA` documents every key
    (``mmzoo train --print-config``)."""

    model: ModelConfig
    data: DataConfig
    optim: OptimConfig
    output_dir: str
    precision: str = "fp32"
    seed: int = 0
    eval_every: int | None = None
    save_every: int | None = None
    log_every: int = 10
    log_to: list[dict[str, Any]] = field(default_factory=list)
    keep_last: int = 2
    best_metric: str = "loss"
    best_mode: str = "min"
    final_model: str = "last"
    resume: str | None = None
    strategy: str = "auto"
    compile: CompileConfig | None = None
    channels_last: bool | list[str] = False
    ddp: DDPConfig = field(default_factory=DDPConfig)
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)
    activation_checkpointing: list[str] = field(default_factory=list)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    device: str = "auto"
    source: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (defaults filled in) as plain YAML-able data."""
        out = asdict(self)
        out.pop("source")
        out["model"] = self.model.to_dict()
        if self.optim.betas is not None:
            out["optim"]["betas"] = list(self.optim.betas)
        return out

    def strategy_for(self, world_size: int) -> str:
        """The strategy a job of ``world_size`` ranks runs: ``auto`` resolved, ``single`` refused for
        several ranks."""
        if self.strategy == "auto":
            return "ddp" if world_size > 1 else "single"
        if self.strategy == "single" and world_size > 1:
            raise ConfigError(
                f"strategy: 'single' trains in one process, but this job has {world_size} ranks; use "
                "strategy: ddp (or auto)"
            )
        return self.strategy
