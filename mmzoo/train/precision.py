"""Mixed precision: autocast for the device type, and loss scaling for fp16."""

from __future__ import annotations

import contextlib

import torch

from mmzoo.errors import ConfigError

_NO_CONTEXT = contextlib.nullcontext()
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """``autocast()`` for the forward pass and a ``GradScaler`` (enabled for fp16 only)."""

    def __init__(self, mode: str, device: torch.device, scaler: type[torch.amp.GradScaler] | None = None) -> None:
        """``scaler``: the loss scaler's class (a sharding strategy's, which agrees on overflows across
        ranks); torch's ``GradScaler`` by default."""
        self.mode = mode
        self.device_type = device.type
        if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("precision: bf16 is not supported by this GPU; use fp16 or fp32")
        self.dtype = _DTYPES.get(mode)
        self.scaler = (scaler or torch.amp.GradScaler)(device.type, enabled=mode == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for the device type, or a no-op context for fp32."""
        if self.dtype is None:
            return _NO_CONTEXT
        return torch.autocast(self.device_type, dtype=self.dtype)
