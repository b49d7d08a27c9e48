"""Computing cached features: one ordered pass over a dataset, every encoder to cache at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mmzoo.feature_cache.store import STORED_AS, EntryWriter
from mmzoo.outputs import EncoderOutput


class BuildCollate:
    """DataLoader ``collate_fn`` for a build pass: each encoder's ``preprocess`` on its key's values,
    and the raw targets (picklable, so workers can run it)."""

    def __init__(self, preprocessors: Mapping[str, Callable]) -> None:
        self.preprocessors = dict(preprocessors)

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
        inputs = {key: preprocess([example[key] for example in examples])
                  for key, preprocess in self.preprocessors.items()}
        return inputs, [example.get("target", _NO_TARGET) for example in examples]


class _NoTarget:
    def __reduce__(self) -> str:
        return "_NO_TARGET"


_NO_TARGET = _NoTarget()


@dataclass
class TargetColumn:
    """The targets of a dataset, kept when they round-trip exactly through a numpy array: Python ints,
    floats, or equal-length lists of either (``array.tolist()`` gives the very values back)."""

    values: list[Any]

    def absent(self) -> bool:
        """No example has a target."""
        return all(v is _NO_TARGET for v in self.values)

    def array(self) -> np.ndarray | None:
        values = self.values
        if not values or any(v is _NO_TARGET for v in values):
            return None
        kind = _scalar_kind(values) if not isinstance(values[0], list) else None
        if kind is not None:
            return np.asarray(values, dtype=kind)
        if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
            flat = [x for v in values for x in v]
            kind = _scalar_kind(flat)
            if kind is not None:
                return np.asarray(values, dtype=kind)
        return None


def _scalar_kind(values: Sequence[Any]) -> type | None:
    if all(type(v) is int for v in values):
        return np.int64 if all(-(2**63) <= v < 2**63 for v in values) else None
    if all(type(v) is float for v in values):
        return np.float64
    return None




def encode_dataset(
    dataset: Any,
    encoders: Mapping[str, nn.Module],
    writers: Mapping[str, EntryWriter],
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    autocast: Callable[[], Any],
) -> TargetColumn:
    """Run each encoder over ``dataset`` in order and append its outputs to its writer; return the
    dataset's targets. The encoders stay in the mode the caller put them in (their training-time mode)."""
    from torch.utils.data import DataLoader

    from mmzoo.train.data import move_to_device, worker_init

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=BuildCollate({key: encoders[key].preprocess for key in writers}),
        num_workers=num_workers,
        worker_init_fn=worker_init,
        generator=torch.Generator().manual_seed(0),
    )
    targets: list[Any] = []
    with torch.no_grad():
        for inputs, batch_targets in loader:
            targets.extend(batch_targets)
            for key, writer in writers.items():
                value = inputs[key] if device.type == "cpu" else move_to_device(inputs[key], device)
                with autocast():
                    output = encoders[key](value)
                output = output if isinstance(output, EncoderOutput) else EncoderOutput(output)
                tokens = mask = None
                if writer.tokens:
                    if output.tokens is None:
                        raise ValueError(f"encoder '{key}' gave no tokens, and the fusion needs them")
                    tokens = _numpy(output.tokens)
                    mask = (
                        output.mask.detach().cpu().numpy().astype(bool) if output.mask is not None
                        else np.ones(tokens.shape[:2], dtype=bool)
                    )
                writer.add(_numpy(output.pooled), tokens, mask)
    return TargetColumn(targets)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    stored = STORED_AS.get(str(tensor.dtype).removeprefix("torch."))
    if stored is not None:
        return tensor.view(torch.int16).numpy().view(stored)
    return tensor.numpy()
