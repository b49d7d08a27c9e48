"""Which encoders' outputs may be cached, and why not for the others.

An encoder is cached only when its output for an example is fixed for the whole run:

1. it is frozen: none of its parameters is trainable (``optim.freeze``, or built frozen);
2. unless it states otherwise (``output_cacheable``), every one of its modules is in eval mode while
   the model trains (the trainer keeps ``optim.freeze`` parts in eval mode), so dropout and batch
   statistics are off;
3. a probe on a few training examples, run twice under different seeds, gives the same inputs from
   ``preprocess`` and the same output from ``forward``, neither draws from the global random
   generators (which would shift the run's other random draws once the encoder is skipped), and each
   example's pooled output alone matches its output inside the batch (no padding or batch leakage).

The optional encoder attribute ``output_cacheable`` is the plugin's statement: ``True`` when, while
none of its parameters is trainable, its output for an example depends on that example alone, in
training mode as in eval mode (so (2) is skipped; the probe still runs); ``False`` when it must never
be cached; absent or ``None`` for mmzoo to decide as above.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mmzoo.outputs import EncoderOutput
from mmzoo.train.data import preserved_rng

ATTRIBUTE = "output_cacheable"
PROBE_EXAMPLES = 4


def static_reason(key: str, encoder: nn.Module) -> str | None:
    """Why ``encoder`` (in the mode it trains in) cannot be cached, from its attributes alone; None
    when it may be, pending :func:`probe_reason`."""
    declared = getattr(encoder, ATTRIBUTE, None)
    if declared is not None and not isinstance(declared, bool):
        return f"its {ATTRIBUTE} is {declared!r}; a plugin sets it to True, False or None"
    if declared is False:
        return f"its plugin declares that its output may not be cached ({ATTRIBUTE} = False)"
    trainable = [name for name, p in encoder.named_parameters() if p.requires_grad]
    if trainable:
        return f"it is trained (freeze it with optim.freeze: [encoders.{key}] to cache its output)"
    if any(t.is_meta for t in encoder.state_dict().values()):
        return "its weights are not materialised (meta device)"
    if declared is None:
        training = [name or "(the encoder itself)" for name, m in encoder.named_modules() if m.training]
        if training:
            shown = ", ".join(training[:3]) + (f" and {len(training) - 3} more" if len(training) > 3 else "")
            return (
                f"modules of it stay in training mode while the model trains ({shown}), where dropout or batch "
                f"statistics would change its output; freeze it with optim.freeze: [encoders.{key}] (kept in "
                f"eval mode), or its plugin can declare {ATTRIBUTE} = True"
            )
    return None


def probe_reason(key: str, encoder: nn.Module, examples: Sequence[Any], device: torch.device) -> str | None:
    """Run ``preprocess`` and ``forward`` on ``examples`` twice under different seeds; the reason the
    output is not fixed, or None. RNG states are restored afterwards."""
    values = list(examples)[:PROBE_EXAMPLES]
    runs = []
    with preserved_rng(), torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
        for seed in (1, 2):
            _seed_all(seed)
            before = _rng_states()
            inputs = encoder.preprocess(values)
            if _rng_states() != before:
                return "its preprocess draws random numbers (augmentation?)"
            with torch.no_grad():
                output = encoder(_to_device(inputs, device))
            if _rng_states() != before:
                return "its forward draws random numbers"
            runs.append((inputs, output))
    (first_in, first_out), (second_in, second_out) = runs
    if not _same(first_in, second_in):
        return "its preprocess gives different inputs for the same examples"
    if not _same(_as_output(first_out), _as_output(second_out)):
        return "its forward gives different outputs for the same inputs"
    together = _pooled(first_out)
    with torch.no_grad():
        for index, value in enumerate(values):
            alone = _pooled(encoder(_to_device(encoder.preprocess([value]), device)))
            if not torch.allclose(alone.float(), together[index : index + 1].float(), rtol=1e-4, atol=1e-5):
                return "an example's output depends on the other examples of its batch (padding or batch statistics)"
    return None


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _rng_states() -> tuple:
    return (torch.get_rng_state().numpy().tobytes(), repr(np.random.get_state()), random.getstate())


def _to_device(value: Any, device: torch.device) -> Any:
    from mmzoo.train.data import move_to_device

    return value if device.type == "cpu" else move_to_device(value, device)


def _as_output(value: Any) -> Any:
    if isinstance(value, EncoderOutput):
        return (value.pooled, value.tokens, value.mask)
    return value


def _pooled(value: Any) -> torch.Tensor:
    return value.pooled if isinstance(value, EncoderOutput) else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and a.dtype == b.dtype and bool(torch.equal(a, b))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False
