"""``strategy: fsdp``: PyTorch's fully sharded data parallel (FSDP2, ``torch.distributed.fsdp.fully_shard``).

Each rank keeps a 1/N shard of every parameter, of its gradient and of the optimizer state. Units
(``fsdp.shard``; by default each encoder's repeated blocks, each encoder and the fusion; the model itself
holds the head and the rest) gather their full parameters just before they run and free them after,
so one unit is whole at a time; gradients are reduce-scattered, each rank keeping the shard it updates.

How a rank gets its shards without ever holding the whole model on its device: rank 0 builds the model
as every strategy does (seeded, pretrained weights loaded), in host memory; the other ranks build a
skeleton on the meta device (``create_model(device="meta")``). Every rank shards its model, allocates
its shards (``Module.to_empty``), and rank 0 sends each tensor in turn, from which every rank keeps
its shard. The values are exactly those of the unsharded build, so ``ddp`` and ``fsdp`` start alike.

``precision: bf16/fp16`` becomes FSDP's mixed-precision policy (parameters gathered in that dtype,
gradients reduced in fp32) and the trainer's autocast stays on (fp16's loss scaler is torch's
``ShardedGradScaler``, which all-reduces the overflow check so every rank skips the same steps);
``fsdp.cpu_offload`` keeps shards, gradients and optimizer state in host memory (CUDA only).
Checkpoints are sharded (see :mod:`mmzoo.train.sharded`); the final model is gathered whole on rank 0.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

from mmzoo.errors import ConfigError
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.parallel import LossOnly, compile_module
from mmzoo.train.selection import auto_units, select_modules
from mmzoo.train.sharded import load_sharded, load_whole, write_sharded
from mmzoo.train.strategy import Strategy, TrainStep

_MIXED = {"bf16": torch.bfloat16, "fp16": torch.float16}


class FSDPStrategy(Strategy):
    """Parameters, gradients and optimizer state sharded across ranks (FSDP2); see the module docstring."""

    name = "fsdp"
    needs_process_group = True
    collective_forward = True
    # fp16: an overflow in one rank's gradient shards skips the step on every rank.
    grad_scaler = ShardedGradScaler

    def build_model(self) -> nn.Module:
        """Rank 0: the model, in host memory; the other ranks: its skeleton on the meta device."""
        self._check_device()
        return self.config.model.build(device=None if self.ctx.is_main else "meta")

    def _check_device(self) -> None:
        if self.config.fsdp.cpu_offload and self.ctx.device.type != "cuda":
            raise ConfigError(
                f"fsdp.cpu_offload: the model already lives in host memory on device {self.ctx.device.type}; "
                "offloading moves shards from a GPU to the CPU. Set it to false (or train on CUDA)"
            )
        if self.config.channels_last not in (False, []):
            raise ConfigError(
                "channels_last: not supported with strategy fsdp (sharding splits each weight along its "
                "first dimension and gathers it back in the default layout); set channels_last to false"
            )

    def prepare(self, model: nn.Module, frozen: list[nn.Module]) -> nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        self.model, self.frozen = model, frozen
        # The whole tensors, before sharding; detached aliases keep their values when to_empty gives a
        # parameter that stays unsharded new storage in place.
        source = {name: t.detach() for name, t in _tensors(model)} if self.ctx.is_main else None
        mesh = init_device_mesh(self.ctx.device.type, (self.ctx.world_size,))
        # FSDP cannot shard a 0-dim tensor (a learned temperature): such parameters stay whole on every
        # rank, their gradients averaged across ranks before each optimizer step.
        self.replicated = [param for param in model.parameters() if param.dim() == 0]
        options = {**self._shard_options(mesh), "ignored_params": set(self.replicated)}
        shard = self.config.fsdp.shard
        names = auto_units(model) if shard == "auto" else shard
        units = select_modules(model, names, "fsdp.shard")
        self.units = list(units)
        for path in sorted(units, key=lambda p: p.count("."), reverse=True):  # inner units first
            fully_shard(units[path], **options)
        fully_shard(model, **options)
        offload = self.config.fsdp.cpu_offload
        model.to_empty(device="cpu" if offload else self.ctx.device)
        if offload:  # shards stay in host memory; what is not sharded lives where the model computes
            for module in model.modules():
                for key, buffer in module._buffers.items():
                    if buffer is not None:
                        module._buffers[key] = buffer.to(self.ctx.device)
                for param in module._parameters.values():
                    if param is not None and param.dim() == 0:
                        param.data = param.data.to(self.ctx.device)
        self._fill_from_rank0(model, source)
        self.replicated = [param for param in model.parameters() if param.dim() == 0]  # after to_empty's new ones
        return model

    def _shard_options(self, mesh: Any) -> dict[str, Any]:
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy

        options: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": self.config.fsdp.reshard_after_forward}
        dtype = _MIXED.get(self.config.precision)
        if dtype is not None:
            options["mp_policy"] = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
        if self.config.fsdp.cpu_offload:
            options["offload_policy"] = CPUOffloadPolicy(pin_memory=True)
        return options

    @torch.no_grad()
    def _fill_from_rank0(self, model: nn.Module, source: dict[str, torch.Tensor] | None) -> None:
        """Send rank 0's whole tensors, one at a time, into every rank's shards and buffers.

        Through a gloo group in host memory, so the same code serves shards on a GPU and shards
        offloaded to the CPU (NCCL moves device memory only); ``distribute_tensor`` with no source rank
        cuts each rank's piece from the whole tensor exactly as FSDP placed it."""
        from torch.distributed.tensor import DTensor, distribute_tensor

        timeout = datetime.timedelta(seconds=self.config.distributed.timeout)
        group = None if self.ctx.backend == "gloo" else dist.new_group(backend="gloo", timeout=timeout)
        for name, tensor in _tensors(model):
            whole = (
                source[name].contiguous()
                if source is not None
                else torch.empty(tensor.shape, dtype=tensor.dtype)
            )
            dist.broadcast(whole, src=0, group=group)
            if isinstance(tensor, DTensor):
                piece = distribute_tensor(whole, tensor.device_mesh, tensor.placements, src_data_rank=None)
                tensor.to_local().copy_(piece.to_local())
            else:
                tensor.copy_(whole)
        if group is not None:
            dist.destroy_process_group(group)

    def _build_train_step(self, precision, train_mode, examples, note) -> TrainStep:
        self.wrapper = "FSDPModule"
        if self.config.compile is None:
            model = self.model
            return lambda batch: model(batch).loss
        return compile_module(LossOnly(self.model), self.config.compile)

    @contextlib.contextmanager
    def optimizer_step(self) -> Iterator[None]:
        """Average the replicated parameters' gradients across ranks, then let the optimizer and the
        gradient clipping treat them as replicated beside the sharded ones."""
        from torch.distributed.tensor.experimental import implicit_replication

        grads = [p.grad for p in self.replicated if p.grad is not None]
        if grads and self.ctx.is_distributed:
            flat = torch.stack(grads)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat /= self.ctx.world_size
            for grad, value in zip(grads, flat, strict=True):
                grad.copy_(value)
        with implicit_replication():
            yield

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate unsharded gradients locally; the last micro-batch reduce-scatters their sum."""
        self.model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            self.model.set_requires_gradient_sync(True)

    # --- state ----------------------------------------------------------------------------------

    def save_checkpoint(self, manager, step, state, optimizer, *, info, keep) -> Path:
        temp = self.ctx.broadcast_object(manager.begin(step) if self.ctx.is_main else None)
        try:
            write_sharded(self.model, optimizer, temp)
        except BaseException:
            if self.ctx.is_main:
                import shutil

                shutil.rmtree(temp, ignore_errors=True)
            raise
        path = manager.finish(temp, step, state, info=info, keep=keep) if self.ctx.is_main else None
        return self.ctx.broadcast_object(path)

    def load_checkpoint(self, path: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        state = ckpt.load_state(path)
        if ckpt.is_sharded(path):
            load_sharded(self.model, optimizer, path)
        else:
            load_whole(self.model, optimizer, path, state["optimizer"])
        return state

    def final_model(self) -> nn.Module | None:
        """The model gathered whole into host memory on rank 0 (a collective), as a plain model."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        whole = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.ctx.is_main:
            return None
        model = self.config.model.build(device="meta")
        # A gathered tensor can be a view into a larger (padded) buffer; safetensors writes whole storages.
        whole = {k: v if v.untyped_storage().nbytes() == v.numel() * v.element_size() else v.clone()
                 for k, v in whole.items()}
        model.load_state_dict(whole, strict=True, assign=True)
        live = dict(self.model.named_buffers())
        for name, buffer in list(model.named_buffers()):
            if buffer.is_meta:  # derived buffers, which state dicts leave out
                owner, _, key = name.rpartition(".")
                model.get_submodule(owner).register_buffer(key, live[name].detach().cpu(), persistent=False)
        model.labels = self.model.labels
        return model


def _tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()
