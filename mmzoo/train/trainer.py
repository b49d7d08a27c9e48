"""The training loop: one process, or one rank of a job started by torchrun / ``--nproc``.

How the ranks share the model (wrapping, gradient sync, checkpoint format, the final model) is the
training strategy's (:mod:`mmzoo.train.strategy`); the loop is the same for every strategy.
An optimizer step takes up to ``grad_accum`` micro-batches of one epoch (gradients are synced on the
last one only), each loss weighted by its share of the step's examples. While the last backward pass
runs, the ranks all-reduce one small tensor: the loss sum, the example count and whether any rank
received SIGTERM/SIGINT. A non-finite loss therefore stops every rank before the update, and a signal
stops every rank after the same step, which is checkpointed. Rank 0 alone writes the run's files.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmzoo.errors import ConfigError
from mmzoo.loggers import RunInfo
from mmzoo.train import artifacts, resume
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import TrainConfig
from mmzoo.train.data import close_loader, move_to_device, seed_cpu_rngs
from mmzoo.train.distributed import (
    LAUNCHER_PID_ENV,
    DistContext,
    env_world,
    lost_peer_error,
    setup_distributed,
    step_stats,
    under_launcher,
)
from mmzoo.train.evaluate import evaluate
from mmzoo.train.lifeline import follow_launcher
from mmzoo.train.memory import malloc_tuned
from mmzoo.train.metrics import MetricsLog
from mmzoo.train.optim import apply_freeze, build_optimizer, build_scheduler, is_fused
from mmzoo.train.parallel import apply_channels_last
from mmzoo.train.precision import Precision
from mmzoo.train.progress import Progress
from mmzoo.train.run_data import build_run_data
from mmzoo.train.run_end import NonFiniteLossError, TrainResult, non_finite_error, publish_final_model
from mmzoo.train.rundir import RunPlan, plan_run
from mmzoo.train.runlock import RunDirLock, held_for_me
from mmzoo.train.selection import apply_activation_checkpointing
from mmzoo.train.signals import GracefulStop
from mmzoo.train.strategy import create_strategy, strategy_class
from mmzoo.train.tracking import Loggers, plan_loggers
from mmzoo.train.view import TrainerView

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer", "derive_seed", "train"]

Hook = Callable[[TrainerView], None]
_NO_CONTEXT = contextlib.nullcontext()


def train(config: TrainConfig, *, hooks: Sequence[Hook] = ()) -> TrainResult:
    """Train as configured (this process is one rank when started by torchrun). Each hook is called
    with a :class:`~mmzoo.train.view.TrainerView` after every optimizer step.

    The run directory is locked for the run's life (:mod:`mmzoo.train.runlock`); under a launcher the
    rank stops when the launcher dies (:mod:`mmzoo.train.lifeline`), and a rank that stops answering
    fails the others after ``distributed.timeout`` seconds with a :class:`DistributedError`.
    """
    if under_launcher():
        launcher = os.environ.get(LAUNCHER_PID_ENV, "")
        follow_launcher(int(launcher) if launcher.isdigit() else None)
    strategy = strategy_class(config, env_world()[1])
    ctx = setup_distributed(config.device, process_group=strategy.needs_process_group,
                            timeout=config.distributed.timeout)
    lock = RunDirLock(config.output_dir)
    trainer = None
    finished = False
    try:
        refused = None
        if ctx.is_main and not held_for_me(config.output_dir):
            try:
                lock.acquire()
            except ConfigError as exc:
                refused = str(exc)
        ctx.raise_if_any(refused)
        trainer = Trainer(config, ctx, hooks=hooks)
        result = trainer.run()
        finished = result.completed
        return result
    except RuntimeError as exc:
        saved = trainer.last_saved if trainer is not None else None
        error = lost_peer_error(exc, rank=ctx.rank, timeout=config.distributed.timeout,
                                step=trainer.step if trainer is not None else None, checkpoint=saved)
        if error is None:
            raise
        raise error from None
    finally:
        lock.release()
        del trainer  # what it holds (model, optimizer, loaders) goes before the process group
        ctx.close(all_finished=finished)


def derive_seed(seed: int, purpose: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + purpose * 7_919 + rank * 104_729) % (2**63 - 1)


class Trainer:
    """Builds everything from the config on construction; :meth:`run` trains."""

    def __init__(self, config: TrainConfig, ctx: DistContext, hooks: Sequence[Hook] = ()) -> None:
        self.config, self.ctx, self.hooks = config, ctx, list(hooks)
        self.device = ctx.device
        self.strategy = create_strategy(config, ctx)
        self.logger_plans = plan_loggers(config.log_to)  # names and parameters, on every rank, before the run dir
        self.plan = self._plan()
        self.run_dir = self.plan.run_dir
        run = self.plan.run
        torch.manual_seed(config.seed)  # identical initialisation on every rank and every world size
        seed_cpu_rngs(config.seed)
        model = self.strategy.build_model()
        apply_channels_last(model, config.channels_last)
        apply_activation_checkpointing(model, config.activation_checkpointing)
        self.frozen = apply_freeze(model, config.optim.freeze)
        self.model = self.strategy.prepare(model, self.frozen)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._build_data()
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler, self.schedule = build_scheduler(self.optimizer, config.optim, self.total_steps)
        self.precision = Precision(config.precision, self.device, self.strategy.grad_scaler)
        self.checkpoints = ckpt.CheckpointManager(run.checkpoints_dir, config.keep_last)
        self.log = MetricsLog(run.metrics_file, enabled=ctx.is_main)
        self.step, self.epoch, self.batches_done = 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.last_eval: dict[str, float] = {}
        self.eval_examples: int | None = None
        self.last_saved: tuple[int, Path] | None = None
        self.rng_state: dict[str, Any] | None = None
        if self.plan.resume_from is not None:
            state = self.strategy.load_checkpoint(self.plan.resume_from, self.optimizer)
            resume.restore(self, state, self.plan.resume_from)
        self.strategy.wrap(
            precision=self.precision, train_mode=self._set_train_mode, examples=self.train_set, note=self.message
        )
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
        self.feature_cache, loaders = build_run_data(
            self.model, self.config, self.ctx, train_mode=self._set_train_mode, note=self.message
        )
        self.train_set, self.eval_set = loaders.train_set, loaders.eval_set
        self.train_loader, self.sampler, self.eval_loader = loaders.train, loaders.sampler, loaders.eval
        self.batches_per_epoch = loaders.batches_per_epoch
        optim = self.config.optim
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / optim.grad_accum)
        self.total_steps = optim.steps if optim.steps is not None else optim.epochs * self.steps_per_epoch

    def _write_start_files(self) -> None:
        if not self.ctx.is_main:
            return
        self.checkpoints.remove_temporaries()
        resumed = self.plan.resume_from
        artifacts.write_run_files(
            self.plan.run,
            self.config,
            {
                "world_size": self.ctx.world_size,
                "strategy": self.strategy.name,
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
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "trainable_parameters": sum(p.numel() for p in self.trainable),
                "feature_cache": self.feature_cache.info,
            },
        )
        metrics_file = self.plan.run.metrics_file
        if resumed is not None:
            self.log.truncate_after(self.step)
        elif metrics_file.exists():  # resume: auto on a run that never checkpointed
            metrics_file.unlink()

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
        self.message(
            f"mmzoo train: {start}; {self.total_steps} steps ({self.steps_per_epoch}/epoch), "
            f"{len(self.train_set)} training examples, {where}; run dir {self.run_dir}"
        )
        if self.rng_state is not None:
            ckpt.restore_rng(self.rng_state)
        else:
            torch.manual_seed(derive_seed(config.seed, 1, self.ctx.rank))
            seed_cpu_rngs(derive_seed(config.seed, 2, self.ctx.rank))
        self._set_train_mode()
        self._window = [0.0, 0, 0.0]  # loss sum, examples, seconds
        self.view = TrainerView(self)
        self.loggers: Loggers | None = None
        try:
            self.loggers = self._start_loggers()
            with GracefulStop(escalate=not under_launcher()) as stop:
                self.stop = stop
                while self.step < self.total_steps:
                    stopped = self._run_epoch()
                    if stopped is not None:
                        return stopped
                return self._finish()
        finally:
            self.strategy.close()
            if self.loggers is not None:
                self.loggers.close()
            self.progress.close()
            self.log.close()
            close_loader(self.train_loader)
            close_loader(self.eval_loader)

    def _start_loggers(self) -> Loggers:
        """The ``log_to`` loggers (rank 0 only), fed every record written to ``metrics.jsonl``."""
        run = RunInfo(
            run_dir=self.run_dir,
            name=self.run_dir.name,
            config=self.config.to_dict(),
            total_steps=self.total_steps,
            world_size=self.ctx.world_size,
            resumed_at_step=self.step if self.plan.resume_from is not None else None,
        )
        loggers = Loggers(self.logger_plans if self.ctx.is_main else [], run,
                          warn=lambda text: self.message(f"mmzoo: warning: {text}"))
        self.log.add_listener(loggers.log)
        return loggers

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
                hook(self.view)
            self._after_step(epoch_end, stop_requested)
            if stop_requested:
                return self._stopped()
            if epoch_end:
                break
        return None

    def _optimizer_step(self, micro: list[tuple[int, Any]]) -> tuple[float, int, bool]:
        total = sum(count for count, _ in micro)
        scaler, strategy = self.precision.scaler, self.strategy
        train_step = strategy.train_step
        losses: list[torch.Tensor] = []
        for index, (count, batch) in enumerate(micro):
            if self._move_batches:
                batch = move_to_device(batch, self.device, self.device.type == "cuda")
            last = index == len(micro) - 1
            with strategy.no_sync() if not last else _NO_CONTEXT:
                with self.precision.autocast():
                    loss = train_step(batch)
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
                        local_only=not self.ctx.is_distributed,
                    )
                weighted = loss if count == total else loss * (count / total)
                scaler.scale(weighted).backward()
        loss_total, examples, stop_requested = stats.result()
        if not math.isfinite(loss_total):
            self._non_finite(loss_total)
        with strategy.optimizer_step():
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
            forward=self.strategy.eval_forward,
            lockstep=self.strategy.collective_forward,
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
        self.message(f"step {self.step} eval: {shown}")
        self._plot()
        name = self.config.best_metric
        if name not in metrics:
            if self.best is None:
                self.message(
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
        state = resume.checkpoint_state(self, rng_states)
        keep = {self.best["step"]} if self.best else set()
        path = self.strategy.save_checkpoint(
            self.checkpoints, self.step, state, self.optimizer, info=resume.checkpoint_info(state), keep=keep
        )
        self.last_saved = (self.step, path)
        return path

    def _stopped(self) -> TrainResult:
        path = self._save()
        self._plot()
        self.message(
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
        self._plot()
        raise non_finite_error(loss_total, step=self.step + 1, epoch=self.epoch, last_saved=self.last_saved)

    def _finish(self) -> TrainResult:
        if self.eval_loader is not None and not self.last_eval:
            self._evaluate()
        path = self._save()
        model = self.strategy.final_model()
        if self.ctx.is_main:
            publish_final_model(
                model,
                self.plan.run,
                self.config,
                step=self.step,
                best=self.best,
                last_eval=self.last_eval,
                eval_examples=self.eval_examples,
                world_size=self.ctx.world_size,
                log=self.log,
                plot=self._plot,
                message=self.message,
            )
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
            artifacts.plot(self.plan.run)

    def message(self, text: str) -> None:
        """Print a line on rank 0 (above the progress bar while there is one)."""
        if not self.ctx.is_main:
            return
        progress = getattr(self, "progress", None)
        if progress is not None:
            progress.message(text)
        else:
            print(text, file=sys.stderr, flush=True)


def _due(step: int, every: int | None, epoch_end: bool) -> bool:
    return step % every == 0 if every is not None else epoch_end

