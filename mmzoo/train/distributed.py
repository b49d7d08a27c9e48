"""Process-group setup from torchrun's environment, collectives the trainer needs, and ``--nproc``.

Under ``torchrun`` (or ``mmzoo train --nproc N``) the environment carries ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address; a world of one needs no process group at all. CUDA ranks
use NCCL on ``cuda:LOCAL_RANK``; CPU ranks use gloo.
"""

from __future__ import annotations

import datetime
import gc
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mmzoo.errors import ConfigError, MmzooError


@dataclass
class DistContext:
    """Where this process sits in the job, and the collectives it uses (no-ops in a world of one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        if not self.is_distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src, device=self._collective_device)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if not self.is_distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order, on rank 0 only (None on the other ranks)."""
        if not self.is_distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_reduce_sum_async(self, tensor: torch.Tensor) -> Any:
        """Start summing ``tensor`` over ranks in place; returns a handle to ``wait()`` on (None in a
        world of one, where there is nothing to wait for)."""
        if not self.is_distributed:
            return None
        return dist.all_reduce(tensor, op=dist.ReduceOp.SUM, async_op=True)

    def raise_if_any(self, message: str | None, error_type: type[Exception] = ConfigError) -> None:
        """Raise on every rank when rank 0 found a problem that only it checked (no hang on the others)."""
        message = self.broadcast_object(message)
        if message:
            raise error_type(message)

    def close(self, all_finished: bool = False) -> None:
        """Destroy the process group, after freeing what still holds it: a DDP module left for the
        interpreter's teardown to free crashed ranks at exit ("terminate called without an active
        exception"), now and then, after the run itself had finished. ``all_finished``: every rank finished
        the run; they then meet once more first, so that no rank tears its connections down while
        another still uses them (never after a failure or a stop, where a peer may be gone)."""
        if self.backend is not None and dist.is_initialized():
            if all_finished:
                try:
                    dist.barrier()
                except RuntimeError:  # a peer gone at the very end: nothing left to protect
                    pass
            gc.collect()
            dist.destroy_process_group()

    def for_parts(self) -> DistributedContext:
        """What parts are told about this job (see :class:`DistributedContext`)."""
        return DistributedContext(self.rank, self.world_size)

    @property
    def _collective_device(self) -> torch.device | None:
        return self.device if self.backend == "nccl" else None


@dataclass(frozen=True)
class DistributedContext:
    """What a part is told about the distributed job it trains in: a head's optional
    ``bind_distributed(context)`` receives one (see :mod:`mmzoo.parts.base`).

    ``all_gather`` is a collective: every rank must call it, in the same order, with a tensor of the
    same shape (evaluation shards differ in size between ranks and may be empty, so gather only while
    training).
    """

    rank: int = 0
    world_size: int = 1

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` concatenated along dim 0 in rank order; gradients flow back to each
        rank's own rows (so a loss over the gathered rows trains every rank's inputs)."""
        if self.world_size == 1:
            return tensor
        return _GatherRows.apply(tensor)


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums every rank's gradient of the gathered rows and keeps
    this rank's slice (an all-reduce: gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.contiguous()
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor)
        ctx.rows = slice(rank * tensor.shape[0], (rank + 1) * tensor.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rows]


class StepStats:
    """The per-step sums every rank needs: (loss sum, examples, stop requests), all-reduced
    asynchronously; :meth:`result` waits for them."""

    def __init__(
        self, stats: torch.Tensor | None, work: Any, local: tuple[torch.Tensor, int, bool] | None
    ) -> None:
        self.stats, self.work, self.local = stats, work, local

    def result(self) -> tuple[float, int, bool]:
        if self.local is not None:  # one process, one micro-batch: a single host sync, no tensor built
            loss, total, stop = self.local
            return loss.item() * total, total, stop
        if self.work is not None:
            self.work.wait()
        loss_sum, examples, stops = self.stats.tolist()
        return loss_sum, int(examples), stops > 0


def step_stats(
    ctx: DistContext, losses: list[torch.Tensor], counts: list[int], stop: bool, *, local_only: bool
) -> StepStats:
    """Start reducing the step's example-weighted loss sum, example count and stop flag over ranks."""
    total = sum(counts)
    if local_only and len(losses) == 1:
        return StepStats(None, None, (losses[0], total, stop))
    weights = torch.tensor(counts, dtype=torch.float64, device=losses[0].device)
    loss_sum = (torch.stack(losses).double() * weights).sum()
    stats = torch.stack([loss_sum, loss_sum.new_tensor(total), loss_sum.new_tensor(float(stop))])
    return StepStats(stats, ctx.all_reduce_sum_async(stats), None)


# How gloo and NCCL report a peer that stopped answering (a timeout) or went away (a closed connection).
_PEER_LOST = re.compile(r"timed out|timeout|connection (?:closed|reset) by peer|pair closure|broken pipe", re.I)


class DistributedError(MmzooError):
    """The ranks of a job could not work together: one stopped answering within ``distributed.timeout``
    or went away (a hung, stopped or killed rank, a lost connection)."""


def lost_peer_error(exc: BaseException, *, rank: int, timeout: float, step: int | None = None,
                    checkpoint: tuple[int, Any] | None = None) -> DistributedError | None:
    """The :class:`DistributedError` for ``exc`` when it is a collective that failed because another
    rank stopped answering or went away (not a mistake of this rank's own); None otherwise. ``step``
    and ``checkpoint`` (step, path of the last one saved) say where the run was."""
    if not isinstance(exc, RuntimeError) or not dist.is_initialized():
        return None
    text = str(exc).strip()
    if not _PEER_LOST.search(text):
        return None
    detail = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0])  # gloo's "[file.cc:78]" prefix
    at = f" after step {step}" if step is not None else " while starting"
    kept = f"; the last checkpoint is {checkpoint[1]} (step {checkpoint[0]})" if checkpoint else ""
    return DistributedError(
        f"rank {rank}: the other ranks did not answer within distributed.timeout ({timeout:g} s){at}: a "
        f"rank stopped, hung or died ({detail}){kept}. Continue with resume: auto once every rank can run; "
        f"raise distributed.timeout if one step or evaluation legitimately takes longer"
    )


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) outside it."""

    def read(name: str, default: int) -> int:
        value = os.environ.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"environment variable {name}={value!r}: expected an integer") from None

    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


def under_launcher() -> bool:
    """True inside a process started by torchrun / ``--nproc`` (even a world of one)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ


def select_device(preference: str, local_rank: int) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is wanted and present, else the CPU."""
    cuda = torch.cuda.is_available()
    if preference == "cuda" and not cuda:
        raise ConfigError("device: 'cuda' was asked for but CUDA is not available; use device: auto or cpu")
    if preference == "cpu" or not cuda:
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(
            f"LOCAL_RANK {local_rank} has no GPU: this node has {count}; start at most "
            f"{count} processes per node"
        )
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def setup_distributed(
    device_preference: str = "auto", *, process_group: bool = False, timeout: float | None = None
) -> DistContext:
    """Create the process group when the environment describes a world of more than one process, or
    when ``process_group`` asks for one even in a world of one (a strategy that wraps the model in
    torch.distributed machinery, such as DDP, on a single device). ``timeout``: seconds a collective
    (and the rendezvous) waits for the other ranks before it fails (``distributed.timeout``)."""
    rank, world_size, local_rank = env_world()
    device = select_device(device_preference, local_rank)
    if world_size <= 1 and not process_group:
        return DistContext(0, 1, 0, device, None)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend}
        if world_size <= 1 and "MASTER_ADDR" not in os.environ:
            kwargs.update(store=dist.HashStore(), rank=0, world_size=1)  # nothing to rendezvous with
        else:
            kwargs["init_method"] = "env://"
        if device.type == "cuda":
            kwargs["device_id"] = device
        if timeout is not None:
            kwargs["timeout"] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(**kwargs)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


#: The launcher's folder for the elastic agent's per-rank error files: ``mmzoo-launch-<pid>-*`` in the
#: temporary directory, removed when the launch ends, and by the next launch if its launcher was killed.
LAUNCH_DIR_PREFIX = "mmzoo-launch-"
#: Set by :func:`launch_local` for its ranks: the launcher's pid (see :mod:`mmzoo.train.lifeline`).
LAUNCHER_PID_ENV = "MMZOO_LAUNCHER_PID"


def remove_stale_launch_dirs() -> list[str]:
    """Remove the launch folders of launchers that no longer run (killed before they could clean up):
    those of this user whose pid is gone. Returns the folders removed."""
    import shutil
    import tempfile

    removed = []
    pattern = re.compile(re.escape(LAUNCH_DIR_PREFIX) + r"(\d+)-")
    root = tempfile.gettempdir()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        try:
            mine = not hasattr(os, "getuid") or entry.stat().st_uid == os.getuid()
            if not match or not entry.is_dir(follow_symlinks=False) or not mine:
                continue
        except OSError:
            continue
        if not _process_exists(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a pid we cannot ask about: leave its folder alone
    return True


def launch_local(nproc: int, cli_args: list[str]) -> int:
    """Run ``python -m mmzoo CLI_ARGS`` as ``nproc`` ranks through torch's elastic launcher (what
    ``torchrun --standalone --nproc-per-node N -m mmzoo CLI_ARGS`` does).

    Returns the exit code for the command: 0 on success, the workers' code 2 for a user error (rank 0
    printed it), 128+signal when the launcher was stopped by a signal (workers were told to stop, and
    each finished its step and checkpointed), 1 for any other failure.
    """
    import logging
    import tempfile
    import uuid

    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "OMP_NUM_THREADS" not in os.environ:  # share the cores between ranks instead of oversubscribing
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    # The launcher's own log lines would repeat what rank 0 already reported; failures are summarised below.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    remove_stale_launch_dirs()
    logs = tempfile.TemporaryDirectory(prefix=f"{LAUNCH_DIR_PREFIX}{os.getpid()}-")
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # the ranks stop if this process dies (lifeline)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"mmzoo-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=logs.name),
    )
    try:
        elastic_launch(config, sys.executable)("-u", "-m", "mmzoo", *cli_args)
    except ChildFailedError as exc:
        codes = sorted({failure.exitcode for failure in exc.failures.values()})
        if 2 in codes:
            return 2
        ranks = ", ".join(str(rank) for rank in sorted(exc.failures))
        print(
            f"error: training rank(s) {ranks} failed with exit code(s) {codes}; see the output above",
            file=sys.stderr,
        )
        return 1
    except SignalException as exc:
        return 128 + int(exc.sigval)
    finally:
        logs.cleanup()
    return 0
