"""Evaluation: loss and the head's metrics over a loader, averaged by example count across ranks;
and loading what ``mmzoo eval`` evaluates (a run, a model directory, a checkpoint, a name)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mmzoo.errors import ConfigError, MmzooError
from mmzoo.train.config import SplitConfig, validate_section
from mmzoo.train.data import move_to_device
from mmzoo.train.distributed import DistContext
from mmzoo.train.metrics import MetricSums, merge_states
from mmzoo.train.precision import Precision
from mmzoo.train.progress import batches_bar

if TYPE_CHECKING:
    from mmzoo.train.rundir import RunDir


def evaluate(
    model: torch.nn.Module,
    loader: Any,
    ctx: DistContext,
    *,
    precision: Precision | None = None,
    device: torch.device | None = None,
    forward: Callable[[Any], Any] | None = None,
    lockstep: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Run ``model`` in eval mode under ``torch.inference_mode`` on every batch of ``loader`` (which
    yields ``(num_examples, batch)``); return ``{"loss": ..., <head metrics>..., "num_examples": N}``
    over all ranks (a collective: call it on every rank). The model's mode is restored. ``forward``
    (default: ``model``) is what each batch goes through, e.g. a ``torch.compile`` of ``model``.

    Head metrics, by what the head offers (first match): ``metric_rows``/``metrics_from_rows`` (per-example
    rows concatenated over batches and ranks, the metrics computed once over the whole evaluation set);
    ``metric_sums``/``metrics_from_sums`` (additive statistics summed over batches and ranks, exact);
    ``metrics`` (per-batch values averaged weighted by example count). Rows and sums are turned into
    metrics on rank 0, whose shard is never empty, and shared: a rank that evaluated no example returns
    the same metrics. The loss is always count-weighted.

    ``lockstep``: every forward is a collective (a sharded model gathers its parameters), so every rank
    runs as many forwards as the rank with the most batches; a rank that has run out repeats a batch of
    one evaluation example and discards the result. ``progress`` shows a bar of batches on rank 0 when
    stderr is a terminal.
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
            bar = batches_bar(loader, desc="eval", enabled=progress and ctx.is_main)
            for count, batch in _batches(loader, bar, ctx, model, lockstep):
                batch = move_to_device(batch, device, non_blocking)
                with precision.autocast() if precision is not None else contextlib.nullcontext():
                    output = forward(batch)
                if count == 0:  # a lockstep filler
                    continue
                if output.loss is not None:
                    weighted.add({"loss": float(output.loss.float())}, count)
                weighted.add(head.add(output.outputs, batch.get("target"), output.fused), count)
                examples += count
    finally:
        model.train(was_training)
    gathered = ctx.all_gather_object((weighted.state(), head.sums, examples))
    result = merge_states(state for state, _, _ in gathered)
    if head.mode == "rows":
        every_rank = ctx.gather_object(head.rows())
        result.update(_on_rank_zero(ctx, lambda: head.finish_rows(every_rank)))
    else:
        result.update(_on_rank_zero(ctx, lambda: head.finish([sums for _, sums, _ in gathered])))
    result["num_examples"] = sum(n for _, _, n in gathered)
    return result


def _batches(
    loader: Any, batches: Iterable[tuple[int, Any]], ctx: DistContext, model: torch.nn.Module, lockstep: bool
) -> Iterator[tuple[int, Any]]:
    """``batches`` (``loader``'s, perhaps behind a progress bar); with ``lockstep``, followed by
    ``(0, filler)`` until every rank is done."""
    if not lockstep or not ctx.is_distributed:
        yield from batches
        return
    missing = max(ctx.all_gather_object(len(loader))) - len(loader)  # agreed before any forward
    yield from batches
    if missing:
        filler = model.collator([loader.dataset[0]])
        for _ in range(missing):
            yield 0, filler


def _on_rank_zero(ctx: DistContext, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``compute()`` on rank 0, its result on every rank (a failure there is raised on every rank)."""
    if not ctx.is_distributed:
        return compute()
    value, error = None, None
    if ctx.is_main:
        try:
            value = compute()
        except Exception as exc:
            error = exc
    value, failure = ctx.broadcast_object((value, None if error is None else f"{type(error).__name__}: {error}"))
    if error is not None:
        raise error
    if failure is not None:
        raise MmzooError(f"evaluation: computing the metrics failed on rank 0 ({failure})")
    return value


class HeadMetrics:
    """Collects what a head's metrics need over an evaluation: per-example rows (``metric_rows``),
    additive sums (``metric_sums``, exact), or per-batch metrics (``metrics``) when it has neither."""

    def __init__(self, head: Any) -> None:
        self.head = head
        self.sums: dict[str, float] = {}
        self.row_batches: dict[str, list[torch.Tensor]] = {}
        if callable(getattr(head, "metric_rows", None)) and callable(getattr(head, "metrics_from_rows", None)):
            self.mode = "rows"
        elif callable(getattr(head, "metric_sums", None)):
            self.mode = "sums"
        else:
            self.mode = "batch" if callable(getattr(head, "metrics", None)) else "none"

    def add(self, outputs: Any, target: Any, fused: Any = None) -> dict[str, float]:
        """Record one batch (the head's ``outputs``, and its input ``fused`` for rows); returns the
        per-batch metrics to weight (empty unless in "batch" mode)."""
        if self.mode == "rows":
            for name, rows in self.head.metric_rows(fused, outputs, target).items():
                self.row_batches.setdefault(name, []).append(rows.detach().cpu())
            return {}
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

    def rows(self) -> dict[str, torch.Tensor]:
        """This rank's rows, concatenated over its batches (empty when it evaluated nothing)."""
        return {name: torch.cat(parts) for name, parts in self.row_batches.items()}

    def finish(self, all_sums: list[dict[str, float]]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for sums in all_sums:
            for name, value in sums.items():
                totals[name] = totals.get(name, 0.0) + value
        if not totals:
            return {}
        return {k: float(v) for k, v in self.head.metrics_from_sums(totals).items()}

    def finish_rows(self, every_rank: list[dict[str, torch.Tensor]] | None) -> dict[str, float]:
        """The head's metrics over every rank's rows, concatenated in rank order (rank 0 only)."""
        ranks = [rows for rows in every_rank or [] if rows]
        if not ranks:
            return {}
        rows = {name: torch.cat([r[name] for r in ranks]) for name in ranks[0]}
        return {k: float(v) for k, v in self.head.metrics_from_rows(rows).items()}


def load_for_eval(source: str) -> tuple[torch.nn.Module, SplitConfig | None]:
    """The model to evaluate from a run directory, a ``save_pretrained`` directory, a checkpoint
    directory, a registry name (its published weights) or ``hf-hub:org/repo``; plus the evaluation
    split of the run it belongs to (None when it belongs to no run, or the run evaluated nothing), so
    that it can be the default data."""
    import mmzoo
    from mmzoo.saved import CONFIG_NAME
    from mmzoo.train.rundir import RunDir, is_checkpoint

    path = Path(source).expanduser()
    if not path.is_dir():
        return mmzoo.create_model(source, pretrained=not _looks_like_file(source)), None
    run = RunDir(path)
    if run.final_model() is not None:
        return mmzoo.create_model(str(run.model_dir)), _run_eval_split(run)
    if (path / CONFIG_NAME).is_file():
        return mmzoo.create_model(str(path)), _run_eval_split(RunDir(path.parent))
    checkpoint = path if is_checkpoint(path) else run.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(
            f"{source}: not a run directory (no model/ or checkpoints/), a model directory (no config.json) "
            "or a checkpoint; give one of those, a registry name or hf-hub:org/repo"
        )
    model, config = model_from_checkpoint(checkpoint)
    data = validate_section("data", config.get("data"), f"{checkpoint}/trainer_state.pt")
    return model, data.eval


def _run_eval_split(run: RunDir) -> SplitConfig | None:
    return run.data_config().eval if run.is_run() else None


def model_from_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a checkpoint's model from the config stored in it and load its weights; returns the
    model and that config (as stored)."""
    from mmzoo.train import checkpoint as ckpt

    state = ckpt.load_state(path)
    model_config = validate_section("model", state["config"]["model"], f"{path}/trainer_state.pt")
    model_config.pretrained = False  # the checkpoint holds every weight
    model = model_config.build()
    ckpt.load_model_weights(model, path)
    if state.get("labels") is not None:  # the class names the run trained with (checkpoints since they are kept)
        model.labels = state["labels"]
    return model, state["config"]


def _looks_like_file(source: str) -> bool:
    return source.endswith((".yaml", ".yml"))
