"""The training loop: one process, or one rank of a DDP job started by torchrun / ``--nproc``.

An optimizer step takes up to ``grad_accum`` micro-batches of one epoch (DDP syncs gradients on the
last one only), each loss weighted by its share of the step's examples. While the last backward pass
runs, the ranks all-reduce one small tensor: the loss sum, the example count and whether any rank
received SIGTERM/SIGINT. A non-finite loss therefore stops every rank before the update, and a signal
stops every rank after the same step, which is checkpointed. Rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmzoo.errors import ConfigError, MmzooError
from mmzoo.train import artifacts
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import ModelConfig, TrainConfig
from mmzoo.train.data import build_loaders, close_loader, move_to_device, seed_cpu_rngs
from mmzoo.train.distributed import DistContext, setup_distributed, step_stats, under_launcher
from mmzoo.train.evaluate import evaluate
from mmzoo.train.memory import malloc_tuned
from mmzoo.train.metrics import MetricsLog
from mmzoo.train.optim import apply_freeze, build_optimizer, build_scheduler, is_fused, reset_base_lrs
from mmzoo.train.parallel import (
    LossOnly,
    apply_channels_last,
    compile_module,
    describe,
    unused_parameters,
    wrap_ddp,
)
from mmzoo.train.precision import Precision
from mmzoo.train.progress import Progress
from mmzoo.train.rundir import CHECKPOINTS_DIR, METRICS_FILE, MODEL_DIR, RunPlan, plan_run
from mmzoo.train.signals import GracefulStop

_NO_CONTEXT = contextlib.nullcontext()


class NonFiniteLossError(MmzooError):
    """The training loss became NaN or infinite; the run stopped before applying that step."""


@dataclass
class TrainResult:
    """How a run ended."""

    run_dir: Path
    step: int
    total_steps: int
    world_size: int
    completed: bool
    stopped_by: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    eval_examples: int | None = None


def train(config: TrainConfig, *, hooks: Sequence[Callable[[Trainer], None]] = ()) -> TrainResult:
    """Train as configured (this process is one rank when started by torchrun)."""
    ctx = setup_distributed(config.device)
    try:
        return Trainer(config, ctx, hooks=hooks).run()
    finally:
        ctx.close()


def derive_seed(seed: int, purpose: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + purpose * 7_919 + rank * 104_729) % (2**63 - 1)


def build_model(model_config: ModelConfig) -> nn.Module:
    """The model a config's ``model`` section names; errors are prefixed with ``model:``."""
    import mmzoo

    try:
        if model_config.spec is not None:
            return mmzoo.create_model(model_config.spec)
        return mmzoo.create_model(
            model_config.name, pretrained=model_config.pretrained, **model_config.overrides
        )
    except MmzooError as exc:
        raise type(exc)(f"model: {exc}") from None


class Trainer:
    """Builds everything from the config on construction; :meth:`run` trains."""

    def __init__(
        self, config: TrainConfig, ctx: DistContext, hooks: Sequence[Callable[[Trainer], None]] = ()
    ) -> None:
        self.config, self.ctx, self.hooks = config, ctx, list(hooks)
        self.device = ctx.device
        self.plan = self._plan()
        self.run_dir = self.plan.run_dir
        torch.manual_seed(config.seed)  # identical initialisation on every rank and every world size
        seed_cpu_rngs(config.seed)
        self.model = build_model(config.model).to(self.device)
        apply_channels_last(self.model, config.channels_last)
        self.frozen = apply_freeze(self.model, config.optim.freeze)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._build_data()
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler, self.schedule = build_scheduler(self.optimizer, config.optim, self.total_steps)
        self.precision = Precision(config.precision, self.device)
        self.checkpoints = ckpt.CheckpointManager(self.run_dir / CHECKPOINTS_DIR, config.keep_last)
        self.log = MetricsLog(self.run_dir / METRICS_FILE, enabled=ctx.is_main)
        self.step, self.epoch, self.batches_done = 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.last_eval: dict[str, float] = {}
        self.eval_examples: int | None = None
        self.last_saved: tuple[int, Path] | None = None
        self._rng_state: dict[str, Any] | None = None
        if self.plan.resume_from is not None:
            self._load(self.plan.resume_from)
        self.forward_module = self._wrap()
        compile_eval = config.compile is not None and config.compile.eval
        self.eval_forward = compile_module(self.model, config.compile) if compile_eval else None
        self._move_batches = self.device.type != "cpu"  # DataLoader batches are already on the CPU
        self._write_start_files()

    # --- setup ----------------------------------------------------------------------------------

    def _plan(self) -> RunPlan:
        plan, error = None, None
        if self.ctx.is_main:
            try:
                plan = plan_run(self.config)
            except ConfigError as exc:
                error = str(exc)
        self.ctx.raise_if_any(error)
        return self.ctx.broadcast_object(plan)

    def _build_data(self) -> None:
        config = self.config
        loaders = build_loaders(
            config.data,
            self.model.collator,
            seed=config.seed,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
            pin_memory=self.device.type == "cuda",
        )
        self.train_set, self.eval_set = loaders.train_set, loaders.eval_set
        self.train_loader, self.sampler, self.eval_loader = loaders.train, loaders.sampler, loaders.eval
        self.batches_per_epoch = loaders.batches_per_epoch
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.optim.grad_accum)
        optim = config.optim
        self.total_steps = optim.steps if optim.steps is not None else optim.epochs * self.steps_per_epoch

    def _load(self, path: Path) -> None:
        """Every rank reads the checkpoint itself (no rank-0-only load, no broadcast to wait for)."""
        state = ckpt.load_state(path)
        ckpt.load_model_weights(self.model, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"resume: the optimizer state in {path} does not fit this model's trainable parameters "
                f"({exc}); were optim.freeze or optim.lr_multipliers changed?"
            ) from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        reset_base_lrs(self.optimizer, self.scheduler, self.config.optim, self.step)
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.best = state.get("best")
        self.last_eval = dict(state.get("last_eval") or {})
        self.eval_examples = state.get("eval_examples")
        self.last_saved = (self.step, path)
        same_layout = (
            state["world_size"] == self.ctx.world_size and state["batch_size"] == self.config.data.batch_size
        )
        if same_layout:
            self.batches_done = int(state["batches_in_epoch"])
            self._rng_state = state["rng"][self.ctx.rank]
        else:
            samples = int(state["batches_in_epoch"]) * state["batch_size"] * state["world_size"]
            self.batches_done = min(
                self.batches_per_epoch, samples // (self.config.data.batch_size * self.ctx.world_size)
            )
            self._message(
                f"note: resuming with world size {self.ctx.world_size} and batch "
                f"{self.config.data.batch_size} "
                f"(checkpoint: {state['world_size']} and {state['batch_size']}); training continues at the "
                "same position but not bit-exactly as the original layout would have"
            )
        if self.batches_done >= self.batches_per_epoch:
            self.epoch, self.batches_done = self.epoch + 1, 0

    def _wrap(self) -> Callable[[Any], torch.Tensor | None]:
        """The callable a training batch goes through: the model's loss, compiled and/or in DDP."""
        self.ddp = None
        if not self.ctx.is_distributed:
            if self.config.compile is None:  # a plain call: no wrapper module to go through each step
                return lambda batch: self.model(batch).loss
            return compile_module(LossOnly(self.model), self.config.compile)
        find_unused = self.config.ddp.find_unused_parameters
        if find_unused == "auto":
            size = min(len(self.train_set), self.config.data.batch_size, 4)
            unused = unused_parameters(
                self.model,
                [self.train_set[i] for i in range(size)],
                self.device,
                self.precision,
                self._set_train_mode,
            )
            if unused:
                self._message(
                    f"note: trainable parameters get no gradient ({describe(unused)}); DDP runs with "
                    "ddp.find_unused_parameters (slower). Freeze them with optim.freeze to avoid it"
                )
            find_unused = bool(unused)
        module = compile_module(LossOnly(self.model), self.config.compile)
        self.ddp = wrap_ddp(module, self.ctx, self.frozen, find_unused, self.config.ddp)
        return self.ddp

    def _write_start_files(self) -> None:
        if not self.ctx.is_main:
            return
        self.checkpoints.remove_temporaries()
        resumed = self.plan.resume_from
        artifacts.write_run_files(
            self.run_dir,
            self.config,
            {
                "world_size": self.ctx.world_size,
                "backend": self.ctx.backend,
                "device": str(self.device),
                "total_steps": self.total_steps,
                "steps_per_epoch": self.steps_per_epoch,
                "train_examples": len(self.train_set),
                "eval_examples": len(self.eval_set) if self.eval_set is not None else 0,
                "resumed_from": str(resumed) if resumed else None,
                "resumed_at_step": self.step if resumed else None,
                "fused_optimizer": is_fused(self.optimizer),
                "malloc_tuned": malloc_tuned(),
            },
        )
        if resumed is not None:
            self.log.truncate_after(self.step)
        elif (self.run_dir / METRICS_FILE).exists():  # resume: auto on a run that never checkpointed
            (self.run_dir / METRICS_FILE).unlink()

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        config = self.config
        self.progress = Progress(self.total_steps, self.step, enabled=self.ctx.is_main)
        where = f"{self.ctx.world_size} rank(s), {self.device}" + (
            f", {self.ctx.backend}" if self.ctx.backend else ""
        )
        start = (
            f"resuming at step {self.step} from {self.plan.resume_from}"
            if self.plan.resume_from
            else "starting"
        )
        self._message(
            f"mmzoo train: {start}; {self.total_steps} steps ({self.steps_per_epoch}/epoch), "
            f"{len(self.train_set)} training examples, {where}; run dir {self.run_dir}"
        )
        if self._rng_state is not None:
            ckpt.restore_rng(self._rng_state)
        else:
            torch.manual_seed(derive_seed(config.seed, 1, self.ctx.rank))
            seed_cpu_rngs(derive_seed(config.seed, 2, self.ctx.rank))
        self._set_train_mode()
        self._window = [0.0, 0, 0.0]  # loss sum, examples, seconds
        try:
            with GracefulStop(escalate=not under_launcher()) as stop:
                self.stop = stop
                while self.step < self.total_steps:
                    stopped = self._run_epoch()
                    if stopped is not None:
                        return stopped
                return self._finish()
        finally:
            self.progress.close()
            self.log.close()
            close_loader(self.train_loader)
            close_loader(self.eval_loader)

    def _run_epoch(self) -> TrainResult | None:
        accum = self.config.optim.grad_accum
        self.sampler.set_position(self.epoch, self.batches_done * self.config.data.batch_size)
        batches = iter(self.train_loader)
        while self.batches_done < self.batches_per_epoch and self.step < self.total_steps:
            started = time.perf_counter()
            micro = [next(batches) for _ in range(min(accum, self.batches_per_epoch - self.batches_done))]
            loss_sum, examples, stop_requested = self._optimizer_step(micro)
            self._window[0] += loss_sum
            self._window[1] += examples
            self._window[2] += time.perf_counter() - started
            self.step += 1
            self.batches_done += len(micro)
            epoch_end = self.batches_done == self.batches_per_epoch
            if epoch_end:
                self.epoch, self.batches_done = self.epoch + 1, 0
            for hook in self.hooks:
                hook(self)
            self._after_step(epoch_end, stop_requested)
            if stop_requested:
                return self._stopped()
            if epoch_end:
                break
        return None

    def _optimizer_step(self, micro: list[tuple[int, Any]]) -> tuple[float, int, bool]:
        total = sum(count for count, _ in micro)
        scaler = self.precision.scaler
        losses: list[torch.Tensor] = []
        for index, (count, batch) in enumerate(micro):
            if self._move_batches:
                batch = move_to_device(batch, self.device, self.device.type == "cuda")
            last = index == len(micro) - 1
            with self.ddp.no_sync() if self.ddp is not None and not last else _NO_CONTEXT:
                with self.precision.autocast():
                    loss = self.forward_module(batch)
                if loss is None:
                    raise ConfigError(
                        "model: the model returned no loss for a training batch; the training data "
                        "needs a 'target' for this head"
                    )
                losses.append(loss.detach())
                if last:  # the step's statistics travel while the backward pass runs
                    stats = step_stats(
                        self.ctx,
                        losses,
                        [c for c, _ in micro],
                        self.stop.requested,
                        local_only=self.ddp is None,
                    )
                weighted = loss if count == total else loss * (count / total)
                scaler.scale(weighted).backward()
        loss_total, examples, stop_requested = stats.result()
        if not math.isfinite(loss_total):
            self._non_finite(loss_total)
        if self.config.optim.clip_grad_norm is not None:
            scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.clip_grad_norm)
        scaler.step(self.optimizer)
        scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_total, examples, stop_requested

    def _after_step(self, epoch_end: bool, stopping: bool) -> None:
        config, step = self.config, self.step
        last = step == self.total_steps
        stats = None
        if step % config.log_every == 0 or last or stopping:
            stats = self._log_train()
        self.progress.update(step, stats or {})
        improved = False
        if self.eval_loader is not None and (_due(step, config.eval_every, epoch_end) or last):
            improved = self._evaluate()
        if _due(step, config.save_every, epoch_end) or last or improved:
            self._save()

    def _log_train(self) -> dict[str, Any]:
        loss_sum, examples, seconds = self._window
        self._window = [0.0, 0, 0.0]
        record = {
            "step": self.step,
            "epoch": round(self.epoch + self.batches_done / self.batches_per_epoch, 4),
            "loss": loss_sum / max(examples, 1),
            "lr": self.config.optim.lr * self.schedule(self.step - 1),
            "samples_per_s": examples / seconds if seconds > 0 else 0.0,
        }
        self.log.write(record)
        return {"loss": record["loss"], "lr": record["lr"], "samples/s": round(record["samples_per_s"], 1)}

    def _evaluate(self) -> bool:
        metrics = evaluate(
            self.model,
            self.eval_loader,
            self.ctx,
            precision=self.precision,
            device=self.device,
            forward=self.eval_forward,
        )
        self._set_train_mode()
        self.eval_examples = int(metrics.pop("num_examples"))
        self.last_eval = metrics
        self.log.write(
            {
                "step": self.step,
                "split": "eval",
                "examples": self.eval_examples,
                **{f"eval_{k}": v for k, v in metrics.items()},
            }
        )
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self._message(f"step {self.step} eval: {shown}")
        self._plot()
        name = self.config.best_metric
        if name not in metrics:
            if self.best is None:
                self._message(
                    f"note: best_metric '{name}' is not among the eval metrics "
                    f"({', '.join(metrics)}); no best checkpoint is kept"
                )
            return False
        value = metrics[name]
        better = self.best is None or (
            value < self.best["value"] if self.config.best_mode == "min" else value > self.best["value"]
        )
        if better and math.isfinite(value):
            self.best = {"step": self.step, "metric": name, "value": value}
            return True
        return False

    def _save(self) -> Path | None:
        """Checkpoint the current step (collective: gathers every rank's RNG state to rank 0)."""
        if self.last_saved is not None and self.last_saved[0] == self.step:
            return self.last_saved[1]
        rng_states = self.ctx.all_gather_object(ckpt.capture_rng())
        path = None
        if self.ctx.is_main:
            state = {
                "step": self.step,
                "epoch": self.epoch,
                "batches_in_epoch": self.batches_done,
                "batch_size": self.config.data.batch_size,
                "world_size": self.ctx.world_size,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.precision.scaler.state_dict() if self.precision.scaler.is_enabled() else None,
                "rng": rng_states,
                "best": self.best,
                "last_eval": self.last_eval,
                "eval_examples": self.eval_examples,
                "config": self.config.to_dict(),
                "mmzoo_version": _mmzoo_version(),
            }
            keep = {self.best["step"]} if self.best else set()
            path = self.checkpoints.save(self.step, self.model, state, keep=keep)
        path = self.ctx.broadcast_object(path)
        self.last_saved = (self.step, path)
        return path

    def _stopped(self) -> TrainResult:
        path = self._save()
        self._plot()
        self._message(
            f"stopped by {self.stop.name} after step {self.step}/{self.total_steps}; checkpoint "
            f"{path}. Continue with resume: auto (mmzoo train CONFIG --set resume=auto)"
        )
        return TrainResult(
            self.run_dir,
            self.step,
            self.total_steps,
            self.ctx.world_size,
            completed=False,
            stopped_by=self.stop.name,
            metrics=self.last_eval,
            checkpoint=path,
        )

    def _non_finite(self, loss_total: float) -> None:
        kept = (
            f"the last good checkpoint is {self.last_saved[1]} (step {self.last_saved[0]})"
            if self.last_saved
            else "no checkpoint had been written yet"
        )
        self._plot()
        raise NonFiniteLossError(
            f"the training loss is {loss_total} at step {self.step + 1} (epoch {self.epoch}); training "
            f"stopped without applying that step, and {kept}. Lower optim.lr, set optim.clip_grad_norm, "
            "or check the data for NaN/inf values"
        )

    def _finish(self) -> TrainResult:
        if self.eval_loader is not None and not self.last_eval:
            self._evaluate()
        path = self._save()
        if self.ctx.is_main:
            artifacts.save_model(
                self.model,
                self.run_dir,
                self.config,
                metrics=self.last_eval,
                eval_examples=self.eval_examples,
                steps=self.step,
                world_size=self.ctx.world_size,
            )
            final = {
                "step": self.step,
                "split": "final",
                "world_size": self.ctx.world_size,
                **{f"eval_{k}": v for k, v in self.last_eval.items()},
            }
            self.log.write(final)
            self._plot()
            self._message(f"done: {self.step} steps; model saved to {self.run_dir / MODEL_DIR}")
        return TrainResult(
            self.run_dir,
            self.step,
            self.total_steps,
            self.ctx.world_size,
            completed=True,
            metrics=self.last_eval,
            checkpoint=path,
            eval_examples=self.eval_examples,
        )

    # --- helpers --------------------------------------------------------------------------------

    def _set_train_mode(self) -> None:
        self.model.train()
        for module in self.frozen:
            module.eval()

    def _plot(self) -> None:
        if self.ctx.is_main:
            self.log.close()
            artifacts.plot(self.run_dir)

    def _message(self, text: str) -> None:
        if not self.ctx.is_main:
            return
        progress = getattr(self, "progress", None)
        if progress is not None:
            progress.message(text)
        else:
            print(text, file=sys.stderr, flush=True)


def _due(step: int, every: int | None, epoch_end: bool) -> bool:
    return step % every == 0 if every is not None else epoch_end


def _mmzoo_version() -> str:
    import mmzoo

    return mmzoo.__version__
