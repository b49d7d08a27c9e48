"""Evaluation: loss and the head's metrics over a loader, averaged by example count across ranks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from mmzoo.train.data import move_to_device
from mmzoo.train.distributed import DistContext
from mmzoo.train.metrics import MetricSums, merge_states
from mmzoo.train.precision import Precision


def evaluate(
    model: torch.nn.Module,
    loader: Any,
    ctx: DistContext,
    *,
    precision: Precision | None = None,
    device: torch.device | None = None,
    forward: Callable[[Any], Any] | None = None,
) -> dict[str, float]:
    """Run ``model`` in eval mode under ``torch.inference_mode`` on every batch of ``loader`` (which
    yields ``(num_examples, batch)``); return ``{"loss": ..., <head metrics>..., "num_examples": N}``
    over all ranks (a collective: call it on every rank). The model's mode is restored. ``forward``
    (default: ``model``) is what each batch goes through, e.g. a ``torch.compile`` of ``model``.

    Head metrics are exact when the head has ``metric_sums``/``metrics_from_sums`` (the sums are
    added over batches and ranks, then turned into metrics once); a head with only ``metrics`` gets
    per-batch values averaged weighted by example count. The loss is always count-weighted.
    """
    device = device or ctx.device
    forward = model if forward is None else forward
    was_training = model.training
    model.eval()
    head = HeadMetrics(getattr(model, "head", None))
    weighted = MetricSums()
    examples = 0
    non_blocking = device.type == "cuda"
    try:
        with torch.inference_mode():
            for count, batch in loader:
                batch = move_to_device(batch, device, non_blocking)
                with precision.autocast() if precision is not None else contextlib.nullcontext():
                    output = forward(batch)
                if output.loss is not None:
                    weighted.add({"loss": float(output.loss.float())}, count)
                weighted.add(head.add(output.outputs, batch.get("target")), count)
                examples += count
    finally:
        model.train(was_training)
    gathered = ctx.all_gather_object((weighted.state(), head.sums, examples))
    result = merge_states(state for state, _, _ in gathered)
    result.update(head.finish([sums for _, sums, _ in gathered]))
    result["num_examples"] = sum(n for _, _, n in gathered)
    return result


class HeadMetrics:
    """Collects a head's additive metric sums (exact), or its per-batch metrics when it has no sums."""

    def __init__(self, head: Any) -> None:
        self.head = head
        self.sums: dict[str, float] = {}
        self.mode = "sums" if callable(getattr(head, "metric_sums", None)) else "batch"
        if self.mode == "batch" and not callable(getattr(head, "metrics", None)):
            self.mode = "none"

    def add(self, outputs: Any, target: Any) -> dict[str, float]:
        """Record one batch; returns the per-batch metrics to weight (empty in "sums" mode)."""
        if self.mode == "sums":
            try:
                for name, value in self.head.metric_sums(outputs, target).items():
                    self.sums[name] = self.sums.get(name, 0.0) + float(value)
                return {}
            except NotImplementedError:
                self.mode = "batch" if callable(getattr(self.head, "metrics", None)) else "none"
        if self.mode == "batch":
            try:
                return {k: float(v) for k, v in self.head.metrics(outputs, target).items()}
            except NotImplementedError:
                self.mode = "none"
        return {}

    def finish(self, all_sums: list[dict[str, float]]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for sums in all_sums:
            for name, value in sums.items():
                totals[name] = totals.get(name, 0.0) + value
        if not totals:
            return {}
        return {k: float(v) for k, v in self.head.metrics_from_sums(totals).items()}


def load_for_eval(source: str) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """The model to evaluate from a run directory, a ``save_pretrained`` directory, a checkpoint
    directory, a registry name (its published weights) or ``hf-hub:org/repo``; plus the run's config
    (as a dict) when the source belongs to a run, so its evaluation data can be the default."""
    from pathlib import Path

    import mmzoo
    from mmzoo.errors import ConfigError
    from mmzoo.train import checkpoint as ckpt
    from mmzoo.train.config import read_yaml
    from mmzoo.train.rundir import CHECKPOINTS_DIR, CONFIG_FILE, MODEL_DIR

    path = Path(source).expanduser()
    if not path.is_dir():
        return mmzoo.create_model(source, pretrained=not _looks_like_file(source)), None
    if (path / MODEL_DIR / "config.json").is_file():
        run_config = read_yaml(path / CONFIG_FILE) if (path / CONFIG_FILE).is_file() else None
        return mmzoo.create_model(str(path / MODEL_DIR)), run_config
    if (path / "config.json").is_file():
        parent_config = path.parent / CONFIG_FILE
        return mmzoo.create_model(str(path)), read_yaml(parent_config) if parent_config.is_file() else None
    checkpoint = (
        path if ckpt.is_checkpoint(path) else ckpt.CheckpointManager(path / CHECKPOINTS_DIR, 1).latest()
    )
    if checkpoint is None:
        raise ConfigError(
            f"{source}: not a run directory (no model/ or checkpoints/), a model directory (no config.json) "
            "or a checkpoint; give one of those, a registry name or hf-hub:org/repo"
        )
    return model_from_checkpoint(checkpoint)


def model_from_checkpoint(path: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a checkpoint's model from the config stored in it and load its weights."""
    from mmzoo.train import checkpoint as ckpt
    from mmzoo.train.config import validate_model_section
    from mmzoo.train.trainer import build_model

    state = ckpt.load_state(path)
    model_config = validate_model_section(state["config"]["model"], source=f"{path}/trainer_state.pt")
    model_config.pretrained = False  # the checkpoint holds every weight
    model = build_model(model_config)
    ckpt.load_model_weights(model, path)
    return model, state["config"]


def _looks_like_file(source: str) -> bool:
    return source.endswith((".yaml", ".yml"))
