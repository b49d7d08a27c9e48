"""Assertions shared by the conformance kit (:mod:`mmzoo.testing.conformance`).

Each raises ``AssertionError`` with a message naming the part (``label``) and the broken promise.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmzoo.outputs import EncoderOutput


def check_output_dim(part: Any, label: str) -> int:
    dim = getattr(part, "output_dim", None)
    assert isinstance(dim, int) and not isinstance(dim, bool) and dim > 0, (
        f"{label}: output_dim must be a positive int, got {dim!r}"
    )
    return dim


def check_gradients(
    module: nn.Module,
    label: str,
    allow_no_grad: Iterable[str],
    recheck: Callable[[list[str]], list[str]] | None = None,
) -> None:
    """Every trainable parameter got a finite gradient that is not exactly zero. ``recheck(names)`` gets
    the parameters whose gradient is exactly zero and returns those that really do not matter (see
    :func:`still_flat`): a gradient can vanish at one point while the output depends on the parameter."""
    allowed = list(allow_no_grad)
    missing, zero, broken = [], [], []
    for name, param in module.named_parameters():
        if not param.requires_grad or any(fnmatch.fnmatchcase(name, p) for p in allowed):
            continue
        if param.grad is None:
            missing.append(name)
        elif not bool(torch.isfinite(param.grad).all()):
            broken.append(name)
        elif not bool(param.grad.any()):
            zero.append(name)
    assert not missing, (
        f"{label}: no gradient reached trainable parameter(s) {missing}; they are not used in forward "
        "(or the graph is detached). Freeze them (requires_grad=False) or pass allow_no_grad= patterns."
    )
    assert not broken, f"{label}: non-finite gradients in {broken}"
    if zero and recheck is not None:
        zero = recheck(zero)
    assert not zero, (
        f"{label}: the gradient of {zero} is exactly zero for random inputs, also with every parameter "
        "nudged at random; the output does not depend on them. Pass allow_no_grad= patterns if that is intended."
    )


def still_flat(
    module: nn.Module, names: list[str], objective: Callable[[nn.Module], Tensor], seed: int = 7
) -> list[str]:
    """Of ``names`` (parameters whose gradient was exactly zero), those whose gradient stays exactly zero
    on a copy of ``module`` with every trainable parameter nudged at random.

    A zero gradient at one point does not mean the output ignores a parameter: a zero-initialised last
    layer zeroes every gradient before it, and with balanced targets on its uniform softmax the
    cross-entropy gradient of the last bias is exactly zero too. A parameter the output really ignores
    stays flat wherever the other parameters are.
    """
    generator = torch.Generator().manual_seed(seed)
    probe = copy.deepcopy(module)
    with torch.no_grad():
        for param in probe.parameters():
            if param.requires_grad and param.is_floating_point():
                param.add_(0.1 * torch.randn(param.shape, generator=generator).to(param))
    probe.zero_grad(set_to_none=True)
    objective(probe).backward()
    params = dict(probe.named_parameters())
    return [n for n in names if params[n].grad is None or not bool(params[n].grad.any())]


def backward(objective: Tensor, module: nn.Module, label: str) -> None:
    module.zero_grad(set_to_none=True)
    if objective.requires_grad:
        objective.backward()
        return
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    assert not trainable, (
        f"{label}: the output does not require grad, so no gradient can reach trainable parameter(s) "
        f"{trainable[:5]}; the graph is detached (.detach(), torch.no_grad or .numpy() in forward)"
    )


def random_objective(value: Tensor, generator: torch.Generator, mask: Tensor | None = None) -> Tensor:
    # Random weights: a plain sum would give zero gradients through e.g. a final LayerNorm.
    weights = torch.randn(value.shape, generator=generator).to(value)
    if mask is not None:
        weights = weights * mask.unsqueeze(-1).to(value.dtype)
    return (value * weights).sum()


def detach(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, EncoderOutput):
        return EncoderOutput(
            *(None if v is None else v.detach().clone() for v in (value.pooled, value.tokens, value.mask))
        )
    if isinstance(value, Mapping):
        return {k: detach(v) for k, v in value.items()}
    return value


def assert_close(expected: Any, actual: Any, label: str, what: str, atol: float) -> None:
    if isinstance(expected, EncoderOutput):
        assert_close(expected.pooled, actual.pooled, label, f"{what} (pooled)", atol)
        if expected.tokens is not None:
            mask = (
                expected.mask
                if expected.mask is not None
                else torch.ones(expected.tokens.shape[:2], dtype=bool)
            )
            assert_close(expected.tokens[mask], actual.tokens[mask], label, f"{what} (tokens)", atol)
        return
    if isinstance(expected, Mapping):
        for key in expected:
            assert_close(expected[key], actual[key], label, f"{what} [{key!r}]", atol)
        return
    assert expected.shape == actual.shape, (
        f"{label}: {what}: shape {list(actual.shape)} != {list(expected.shape)}"
    )
    diff = (expected.float() - actual.float()).abs().max().item() if expected.numel() else 0.0
    scale = max(1.0, expected.float().abs().max().item() if expected.numel() else 0.0)
    assert diff <= atol * scale, (
        f"{label}: {what}: outputs differ by up to {diff:.3g} (tolerance {atol * scale:.3g})"
    )


def check_round_trip(
    part: nn.Module,
    rebuild: Callable[[], nn.Module],
    run: Callable[[nn.Module], Any],
    label: str,
    atol: float,
) -> None:
    from safetensors.torch import load_file, save_file

    part.eval()
    with torch.no_grad():
        before = detach(run(part))
        again = detach(run(part))
    assert_close(before, again, label, "two eval-mode forwards on the same input (not deterministic)", atol)
    state = part.state_dict()
    not_tensors = [k for k, v in state.items() if not isinstance(v, Tensor)]
    assert not not_tensors, (
        f"{label}: state_dict entries {not_tensors} are not tensors; safetensors cannot save them"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.safetensors"
        save_file({k: v.detach().cpu().clone().contiguous() for k, v in state.items()}, str(path))
        loaded = load_file(str(path))
    fresh = rebuild()
    result = fresh.load_state_dict(loaded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, f"{label}: load_state_dict: {result}"
    fresh.eval()
    with torch.no_grad():
        after = detach(run(fresh))
    assert_close(
        before,
        after,
        label,
        "a fresh instance loaded from the saved safetensors state_dict gives different outputs "
        "(some state lives outside state_dict)",
        atol,
    )


def pooled_tokens_mask(
    out: Any, batch: int, dim: int, label: str
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    if isinstance(out, Tensor):
        pooled, tokens, mask = out, None, None
    else:
        assert isinstance(out, EncoderOutput), (
            f"{label}: forward must return a Tensor[B, D] or mmzoo.EncoderOutput, got {type(out).__name__}"
        )
        pooled, tokens, mask = out.pooled, out.tokens, out.mask
    assert isinstance(pooled, Tensor), f"{label}: pooled must be a Tensor, got {type(pooled).__name__}"
    assert pooled.shape == (batch, dim), (
        f"{label}: pooled output has shape {list(pooled.shape)}, expected [{batch}, {dim}] "
        f"(batch of {batch}, output_dim={dim}); output_dim must be the real width"
    )
    assert bool(torch.isfinite(pooled).all()), f"{label}: pooled output has NaN or infinite values"
    if tokens is not None:
        assert tokens.dim() == 3 and tokens.shape[0] == batch and tokens.shape[2] == dim, (
            f"{label}: tokens have shape {list(tokens.shape)}, expected [{batch}, T, {dim}] "
            f"(output_dim={dim})"
        )
    if mask is not None:
        assert tokens is not None, f"{label}: a mask without tokens; return mask=None or give tokens"
        assert mask.dtype == torch.bool, (
            f"{label}: mask must be a bool tensor (True = real token), got {mask.dtype}"
        )
        assert mask.shape == tokens.shape[:2], (
            f"{label}: mask has shape {list(mask.shape)}, tokens {list(tokens.shape)}; expected mask [B, T]"
        )
        assert bool(mask.any(dim=1).all()), f"{label}: an example has no real token (its mask is all False)"
    if tokens is not None:
        valid = tokens[mask] if mask is not None else tokens
        assert bool(torch.isfinite(valid).all()), f"{label}: tokens have NaN or infinite values"
    return pooled, tokens, mask


def valid_tokens(out: Any, index: int) -> Tensor | None:
    if not isinstance(out, EncoderOutput) or out.tokens is None:
        return None
    tokens = out.tokens[index]
    return tokens if out.mask is None else tokens[out.mask[index]]


def check_pooled_alone_trains(
    encoder: nn.Module, inputs: Any, label: str, allow_no_grad: Iterable[str]
) -> None:
    # Most fusions read only the pooled vector; parameters reached only through the tokens would
    # then never train (and make DistributedDataParallel look for unused parameters every step).
    encoder.zero_grad(set_to_none=True)
    pooled = as_pooled(encoder(inputs))
    if not pooled.requires_grad:
        return
    random_objective(pooled, torch.Generator().manual_seed(1)).backward()
    allowed = list(allow_no_grad)
    idle = [
        name
        for name, p in encoder.named_parameters()
        if p.requires_grad and p.grad is None and not any(fnmatch.fnmatchcase(name, a) for a in allowed)
    ]
    assert not idle, (
        f"{label}: parameter(s) {idle} get a gradient only through the tokens, so with a fusion that reads "
        "pooled features (concat, sum, gated, ...) they never train; derive pooled from the same layers "
        "(e.g. pool the tokens) or pass allow_no_grad= patterns"
    )


def as_pooled(out: Any) -> Tensor:
    return out if isinstance(out, Tensor) else out.pooled


def check_metrics(metrics: Any, label: str, what: str) -> dict[str, float]:
    assert isinstance(metrics, Mapping), f"{label}: {what} must return a dict, got {type(metrics).__name__}"
    for name, value in metrics.items():
        assert isinstance(name, str), f"{label}: {what}: metric names must be strings, got {name!r}"
        assert isinstance(value, float) and not isinstance(value, bool), (
            f"{label}: {what}: metric {name!r} must be a plain float, got {type(value).__name__} {value!r} "
            "(use float(...) so it can be logged and reduced)"
        )
        assert math.isfinite(value), f"{label}: {what}: metric {name!r} is {value}"
    return dict(metrics)


def call_optional(method: Any, *args: Any) -> Any:
    """Call an optional head method; ``None`` when it is absent or raises NotImplementedError."""
    if not callable(method):
        return None
    try:
        return method(*args)
    except NotImplementedError:
        return None


def assert_metrics_equal(expected: dict[str, float], actual: dict[str, float], label: str, what: str) -> None:
    assert set(expected) == set(actual), (
        f"{label}: {what}: metric names differ: {sorted(expected)} vs {sorted(actual)}"
    )
    for name, value in expected.items():
        assert math.isclose(value, actual[name], rel_tol=1e-6, abs_tol=1e-9), (
            f"{label}: {what}: {name} = {actual[name]} but expected {value}"
        )


def check_path_params(factory: Any, label: str) -> None:
    """The optional ``path_params`` declaration (:mod:`mmzoo.localpaths`): a tuple of the names of the
    factory's parameters whose values may be local paths; each one a parameter the factory takes."""
    import inspect

    target = getattr(factory, "__wrapped__", factory)
    declared = getattr(target, "path_params", getattr(factory, "path_params", None))
    if declared is None:
        return
    assert isinstance(declared, (tuple, list)) and all(isinstance(n, str) and n.isidentifier() for n in declared), (
        f"{label}: path_params must be a tuple of parameter names (those whose values may be local paths), "
        f"got {declared!r}"
    )
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return  # it passes any keyword on (to timm, to transformers): any name may be one of them
    unknown = [name for name in declared if name not in params]
    assert not unknown, (
        f"{label}: path_params names {unknown}, which the factory does not take (it takes {', '.join(params)}); "
        f"a misspelt name leaves that path unchecked in loaded configs"
    )
