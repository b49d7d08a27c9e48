"""Conformance kit: checks that an encoder, fusion or head honours the mmzoo part contract.

Call these from a plugin's own tests. Each builds the part, runs it on example inputs and raises
``AssertionError`` with a precise message at the first broken promise:

- ``output_dim`` is a positive int and is the real width of what the part returns;
- ``preprocess`` -> ``forward`` works on raw examples and gives the documented shapes
  (pooled ``[B, D]``, tokens ``[B, T, D]`` with a bool mask ``[B, T]``);
- gradients reach every trainable parameter (and, for fusions and heads, every input);
- padding does not leak: masked tokens do not change a fusion's output, and an encoder gives an
  example the same features alone as inside a padded batch;
- the loss is a finite scalar, metrics are plain floats, metric sums merge across batches, and
  metric names are fixed when the head is built (a head that never ran a batch names them too);
- a state_dict saved with safetensors and loaded into a freshly built part reproduces its
  outputs in eval mode (nothing the part needs lives outside its state_dict);
- a part that declares ``handles_missing`` (missing modalities, see :mod:`mmzoo.missing`) takes
  ``present=`` masks for every subset of missing inputs: finite outputs and gradients, and an
  example's output does not depend on the features of the inputs it lacks;
- an encoder's optional explanation hooks work: ``input_embeddings()`` returns the module whose
  output its forward reads, ``token_labels(ids)`` one string per id;
- an encoder's optional ``raw_input`` (a :class:`mmzoo.RawInput`) is true: its kind, sizes, and for
  file paths, that a file gives what its decoded value gives (:mod:`mmzoo.testing.raw_input_check`).
- an optional ``path_params`` declaration (the parameters that are local paths, refused when they
  come from a loaded model's config) names parameters the factory takes;
- an encoder's ``output_cacheable = True`` holds: frozen and in training mode, its output for an example
  is fixed (:mod:`mmzoo.testing.conformance_cache`, which also checks a dataset's ``fingerprint()``).

``factory`` may be a class or callable, or the registered name of a part (``"cnn"``,
``"DIST:name"``, ``"timm/resnet18"``), resolved through the installed plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmzoo.outputs import EncoderOutput
from mmzoo.testing._conformance_checks import (
    as_pooled,
    assert_close,
    backward,
    check_gradients,
    check_output_dim,
    check_path_params,
    check_pooled_alone_trains,
    check_round_trip,
    detach,
    pooled_tokens_mask,
    random_objective,
    still_flat,
    valid_tokens,
)
from mmzoo.testing._explain_checks import check_explain_hooks
from mmzoo.testing._head_checks import (
    check_distributed_context,
    check_fixed_at_build,
    check_head_metrics,
    collate_target,
)
from mmzoo.testing._metric_rows import check_metric_rows
from mmzoo.testing._missing_checks import (
    check_fusion_missing,
    check_head_missing,
    fusion_objective_with_missing,
)
from mmzoo.testing.conformance_cache import check_output_cacheable
from mmzoo.testing.examples import default_examples
from mmzoo.testing.raw_input_check import check_raw_input

__all__ = ["check_encoder", "check_fusion", "check_head", "default_examples"]

Factory = Callable[..., nn.Module] | str


# ---- building ---------------------------------------------------------------------------------------
def _resolve(kind: str, factory: Factory) -> tuple[Callable[..., nn.Module], str, str | None]:
    """Return ``(callable, label, registered modality)`` for a callable or a registered name (the
    modality only when the registry names exactly one)."""
    if not isinstance(factory, str):
        assert callable(factory), f"factory must be callable or a registered {kind} name, got {factory!r}"
        return factory, getattr(factory, "__name__", repr(factory)), None
    from mmzoo.plugins import get_registry

    resolved = get_registry().resolve(kind, factory)
    modalities = resolved.modalities()
    return resolved.factory(), f"{kind} {factory!r}", modalities[0] if len(modalities) == 1 else None


def _build(
    build: Callable[..., nn.Module], label: str, leading: tuple, params: Mapping | None, seed: int
) -> nn.Module:
    torch.manual_seed(seed)
    part = build(*leading, **dict(params or {}))
    assert isinstance(part, nn.Module), (
        f"{label}: the factory must return a torch.nn.Module, got {type(part)}"
    )
    return part


# ---- encoders ---------------------------------------------------------------------------------------
def check_encoder(
    factory: Factory,
    params: Mapping[str, Any] | None = None,
    examples: Sequence | None = None,
    *,
    modality: str | None = None,
    allow_no_grad: Iterable[str] = (),
    batch_independent: bool = True,
    atol: float = 1e-4,
) -> nn.Module:
    """Check an encoder end to end on raw ``examples`` and return the built encoder.

    Without ``examples``, :func:`default_examples` of ``modality`` are used (taken from the
    encoder's ``modality`` attribute, else from the registry for a registered name; vector
    examples use its ``in_dim``). ``batch_independent`` checks that each example gets the same
    features alone as inside the (padded) batch, in eval mode. ``allow_no_grad`` lists
    ``fnmatch`` patterns of parameter names allowed to get no gradient.
    """
    build, label, registered = _resolve("encoder", factory)
    check_path_params(build, label)
    encoder = _build(build, label, (), params, seed=0)
    dim = check_output_dim(encoder, label)
    assert callable(getattr(encoder, "preprocess", None)), (
        f"{label}: encoders need a preprocess(examples) method"
    )
    if examples is None:
        # the encoder knows its own modality best (a family like hf/ registers text and audio)
        modality = modality or getattr(encoder, "modality", None) or registered
        assert modality, f"{label}: pass examples= or modality= so the kit knows what raw inputs to give"
        in_dim = getattr(encoder, "in_dim", None) or getattr(encoder, "input_dim", None)
        examples = default_examples(modality, in_dim=in_dim)
    examples = list(examples)
    assert examples, f"{label}: examples must not be empty"
    batch = len(examples)

    inputs = encoder.preprocess(examples)
    encoder.train()
    out = encoder(inputs)
    pooled, tokens, mask = pooled_tokens_mask(out, batch, dim, f"{label} forward(preprocess(examples))")
    generator = torch.Generator().manual_seed(0)
    objective = random_objective(pooled, generator)
    if tokens is not None:
        objective = objective + random_objective(tokens, generator, mask)
    backward(objective, encoder, label)

    def encoder_objective(probe: nn.Module) -> Tensor:
        out = probe(inputs)
        gen = torch.Generator().manual_seed(1)
        tokens = out.tokens if isinstance(out, EncoderOutput) else None
        mask = out.mask if isinstance(out, EncoderOutput) else None
        extra = random_objective(tokens, gen, mask) if tokens is not None else 0.0
        return random_objective(as_pooled(out), gen) + extra

    check_gradients(encoder, label, allow_no_grad, lambda names: still_flat(encoder, names, encoder_objective))
    if tokens is not None:
        check_pooled_alone_trains(encoder, inputs, label, allow_no_grad)

    if batch_independent:
        encoder.eval()
        with torch.no_grad():
            together = encoder(inputs)
            for i, example in enumerate(examples):
                alone = encoder(encoder.preprocess([example]))
                pooled_tokens_mask(alone, 1, dim, f"{label} forward(preprocess([example {i}]))")
                where = f"example {i} alone vs. inside the batch (padding or batch statistics leak)"
                assert_close(
                    as_pooled(together)[i : i + 1], as_pooled(alone), label, f"{where}, pooled", atol
                )
                mine, theirs = valid_tokens(together, i), valid_tokens(alone, 0)
                if mine is not None and theirs is not None:
                    assert mine.shape == theirs.shape, (
                        f"{label}: {where}: {theirs.shape[0]} real tokens alone but {mine.shape[0]} "
                        "in the batch; "
                        "the mask must mark exactly the example's own tokens"
                    )
                    assert_close(mine, theirs, label, f"{where}, tokens", atol)

    check_explain_hooks(encoder, inputs, label)
    check_output_cacheable(encoder, lambda: _build(build, label, (), params, seed=0), examples, label)
    check_round_trip(
        encoder, lambda: _build(build, label, (), params, seed=1234), lambda m: m(inputs), label, atol
    )
    check_raw_input(encoder, label)
    return encoder


# ---- fusions ----------------------------------------------------------------------------------------
def _fusion_features(
    input_dims: Mapping[str, int], batch: int, tokens: bool, generator: torch.Generator
) -> dict[str, EncoderOutput]:
    features = {}
    for i, (key, dim) in enumerate(input_dims.items()):
        pooled = torch.randn(batch, dim, generator=generator).requires_grad_()
        if not tokens:
            features[key] = EncoderOutput(pooled=pooled)
            continue
        length = 4 + i
        seq = torch.randn(batch, length, dim, generator=generator).requires_grad_()
        lengths = torch.tensor([max(1, length - b) for b in range(batch)])  # row 0 full, then more padding
        mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
        features[key] = EncoderOutput(pooled=pooled, tokens=seq, mask=mask)
    return features


def _check_fusion_output(out: Any, fusion: Any, keys: Sequence[str], batch: int, label: str) -> list[Tensor]:
    kind = getattr(fusion, "output_kind", "tensor")
    dim = fusion.output_dim
    if kind == "tensor":
        assert isinstance(out, Tensor), (
            f"{label}: output_kind 'tensor' but forward returned {type(out).__name__}"
        )
        values = {"output": out}
    else:
        assert isinstance(out, Mapping) and out, (
            f"{label}: output_kind 'dict' but forward returned {type(out).__name__}; "
            "return {key: Tensor[B, D]}"
        )
        unknown = [k for k in out if k not in keys]
        assert not unknown, f"{label}: output keys {unknown} are not input keys {list(keys)}"
        values = dict(out)
    for name, value in values.items():
        assert isinstance(value, Tensor) and value.shape == (batch, dim), (
            f"{label}: {name} has shape {list(getattr(value, 'shape', []))}, expected [{batch}, {dim}] "
            f"(output_dim={dim}); output_dim must be the real width"
        )
        assert bool(torch.isfinite(value).all()), f"{label}: {name} has NaN or infinite values"
    return list(values.values())


def check_fusion(
    factory: Factory,
    input_dims: Mapping[str, int],
    params: Mapping[str, Any] | None = None,
    *,
    tokens: bool = True,
    batch_size: int = 3,
    allow_no_grad: Iterable[str] = (),
    atol: float = 1e-4,
) -> nn.Module:
    """Check a fusion built as ``factory(input_dims, **params)`` and return it.

    Features are random ``EncoderOutput``s; with ``tokens`` (always, if the fusion sets
    ``requires_tokens``) they carry token sequences whose later examples are padded, and the
    check verifies that changing padded tokens does not change the output. Every modality must
    influence the output (receive a gradient). A fusion that sets ``handles_missing`` is also run
    with every subset of its inputs missing from some examples (``forward(features, present=...)``).
    """
    build, label, _ = _resolve("fusion", factory)
    check_path_params(build, label)
    input_dims = dict(input_dims)
    fusion = _build(build, label, (dict(input_dims),), params, seed=0)
    check_output_dim(fusion, label)
    kind = getattr(fusion, "output_kind", "tensor")
    assert kind in ("tensor", "dict"), f"{label}: output_kind must be 'tensor' or 'dict', got {kind!r}"
    requires_tokens = getattr(fusion, "requires_tokens", False)
    assert isinstance(requires_tokens, bool), (
        f"{label}: requires_tokens must be a bool, got {requires_tokens!r}"
    )
    tokens = tokens or requires_tokens
    handles_missing = getattr(fusion, "handles_missing", False)
    assert isinstance(handles_missing, bool), f"{label}: handles_missing must be a bool, got {handles_missing!r}"
    if handles_missing:
        batch_size = max(batch_size, len(input_dims) + 1)  # room for every input to be missing somewhere
    generator = torch.Generator().manual_seed(0)
    features = _fusion_features(input_dims, batch_size, tokens, generator)

    def with_missing(probe: nn.Module, probe_features: Mapping[str, EncoderOutput], gen: torch.Generator):
        if not handles_missing:
            return 0.0
        return fusion_objective_with_missing(probe, probe_features, gen)

    fusion.train()
    outputs = _check_fusion_output(fusion(features), fusion, list(input_dims), batch_size, label)
    backward(sum(random_objective(o, generator) for o in outputs) + with_missing(fusion, features, generator),
             fusion, label)

    probe_features: dict[str, EncoderOutput] = {}

    def fusion_objective(probe: nn.Module) -> Tensor:
        probe_features.clear()
        for key, feature in features.items():
            fresh = detach(feature)
            for t in (fresh.pooled, fresh.tokens):
                if t is not None:
                    t.requires_grad_()
            probe_features[key] = fresh
        out = probe(probe_features)
        gen = torch.Generator().manual_seed(1)
        objective = sum(random_objective(o, gen) for o in (out.values() if isinstance(out, Mapping) else [out]))
        return objective + with_missing(probe, probe_features, gen)

    def reached(feature: EncoderOutput) -> bool:
        grads = [t.grad for t in (feature.pooled, feature.tokens) if t is not None and t.grad is not None]
        return any(bool(g.any()) for g in grads)

    check_gradients(fusion, label, allow_no_grad, lambda names: still_flat(fusion, names, fusion_objective))
    if not all(reached(f) for f in features.values()):
        still_flat(fusion, [], fusion_objective)  # a zero-initialised layer blocks gradients at one point only
    for key, feature in features.items():
        assert reached(feature) or reached(probe_features[key]), (
            f"{label}: the output does not depend on modality {key!r} (no gradient reaches its features, "
            "also with every parameter nudged at random)"
        )

    if tokens:
        fusion.eval()
        with torch.no_grad():
            before = detach(fusion(features))
            noisy = {}
            for key, f in features.items():
                junk = torch.randn(f.tokens.shape, generator=generator) * 100.0
                seq = torch.where(f.mask.unsqueeze(-1), f.tokens.detach(), junk)
                noisy[key] = EncoderOutput(pooled=f.pooled.detach(), tokens=seq, mask=f.mask)
            assert_close(
                before,
                detach(fusion(noisy)),
                label,
                "changing padded tokens (mask False) changed the output; the mask is not respected",
                atol,
            )

    if handles_missing:
        check_fusion_missing(
            fusion, features, label, lambda out, n: _check_fusion_output(out, fusion, list(input_dims), n, label), atol
        )

    fixed = {k: detach(f) for k, f in features.items()}
    check_round_trip(
        fusion,
        lambda: _build(build, label, (dict(input_dims),), params, seed=1234),
        lambda m: m(fixed),
        label,
        atol,
    )
    return fusion


# ---- heads ------------------------------------------------------------------------------------------
def check_head(
    factory: Factory,
    input_dim: int = 16,
    params: Mapping[str, Any] | None = None,
    *,
    fused: Tensor | Mapping[str, Tensor] | None = None,
    target: Any = None,
    keys: Sequence[str] = ("a", "b"),
    batch_size: int = 6,
    allow_no_grad: Iterable[str] = (),
    atol: float = 1e-4,
) -> nn.Module:
    """Check a head built as ``factory(input_dim, **params)`` and return it.

    ``fused`` defaults to random features (a dict over ``keys`` when ``input_kind == "dict"``).
    ``target`` (a tensor, or a list of raw targets collated with the head's ``collate_targets``)
    is required unless the head sets ``requires_target = False``. Checks the loss, gradients,
    ``metrics``, and that ``metric_sums`` of two half batches merge into the full batch's metrics
    (skipped for ``metrics_within_batch`` heads). Like the builder, it calls the optional
    ``bind_input_keys(keys)`` after construction; then checks that a head which never ran a batch
    names and computes its metrics from summed statistics the same way, that the optional
    ``metric_rows``/``metrics_from_rows`` give one row per example and merge across batches by
    concatenation, and that the optional ``bind_distributed`` with a world of one changes nothing.
    """
    build, label, _ = _resolve("head", factory)
    check_path_params(build, label)

    def build_bound(seed: int) -> nn.Module:  # as the builder builds a head: constructed, then bound
        part = _build(build, label, (input_dim,), params, seed=seed)
        bind = getattr(part, "bind_input_keys", None)
        if callable(bind):
            bind(tuple(keys))
        return part

    head = build_bound(seed=0)
    input_kind = getattr(head, "input_kind", "tensor")
    assert input_kind in ("tensor", "dict"), (
        f"{label}: input_kind must be 'tensor' or 'dict', got {input_kind!r}"
    )
    requires_target = getattr(head, "requires_target", True)
    assert isinstance(requires_target, bool), (
        f"{label}: requires_target must be a bool, got {requires_target!r}"
    )
    assert callable(getattr(head, "loss", None)), f"{label}: heads need a loss(outputs, target) method"
    generator = torch.Generator().manual_seed(0)
    if fused is None:
        if input_kind == "dict":
            fused = {k: torch.randn(batch_size, input_dim, generator=generator) for k in keys}
        else:
            fused = torch.randn(batch_size, input_dim, generator=generator)
    fused = (
        {k: v.detach().clone().requires_grad_() for k, v in fused.items()}
        if isinstance(fused, Mapping)
        else fused.detach().clone().requires_grad_()
    )
    batch = next(iter(fused.values())).shape[0] if isinstance(fused, Mapping) else fused.shape[0]
    assert target is not None or not requires_target, (
        f"{label}: requires_target is True, so pass target= (a tensor or a list of raw targets)"
    )
    target = collate_target(head, target)

    head.train()
    outputs = head(fused)
    assert isinstance(outputs, Tensor), f"{label}: forward must return a Tensor, got {type(outputs).__name__}"
    assert outputs.shape[0] == batch, (
        f"{label}: outputs have shape {list(outputs.shape)}; first dim must be {batch}"
    )
    assert bool(torch.isfinite(outputs).all()), f"{label}: outputs have NaN or infinite values"
    loss = head.loss(outputs, target)
    assert isinstance(loss, Tensor) and loss.dim() == 0, (
        f"{label}: loss must be a 0-dim Tensor, got {type(loss).__name__} {list(getattr(loss, 'shape', []))}"
    )
    assert bool(torch.isfinite(loss)), f"{label}: loss is {loss.item()}"
    assert loss.requires_grad, f"{label}: the loss does not require grad (detached from the outputs)"
    head.zero_grad(set_to_none=True)
    loss.backward()
    probe_inputs: list[Tensor] = []

    def head_objective(probe: nn.Module) -> Tensor:
        # the loss, and random weights on the outputs: a loss can be flat where the outputs are not
        probe_fused = detach(fused)
        leaves = list(probe_fused.values()) if isinstance(probe_fused, Mapping) else [probe_fused]
        for leaf in leaves:
            leaf.requires_grad_()
        probe_inputs[:] = leaves
        out = probe(probe_fused)
        return probe.loss(out, target) + random_objective(out, torch.Generator().manual_seed(1))

    check_gradients(head, label, allow_no_grad, lambda names: still_flat(head, names, head_objective))
    inputs = fused.values() if isinstance(fused, Mapping) else [fused]
    if not all(t.grad is not None and bool(t.grad.any()) for t in inputs):
        still_flat(head, [], head_objective)
        inputs = probe_inputs
    assert all(t.grad is not None and bool(t.grad.any()) for t in inputs), (
        f"{label}: the loss does not depend on the fused features (no gradient reaches them, also with every "
        "parameter nudged at random)"
    )

    with torch.no_grad():
        outputs = head(fused)
    check_head_metrics(head, outputs, target, batch, label)
    check_fixed_at_build(head, build_bound(seed=1), outputs, target, label)
    check_metric_rows(head, build_bound(seed=1), detach(fused), target, batch, label)
    check_distributed_context(head, fused, target, label, atol)
    if getattr(head, "handles_missing", False) and isinstance(fused, Mapping):
        check_head_missing(head, detach(fused), target, label, atol)

    fixed = detach(fused)
    check_round_trip(head, lambda: build_bound(seed=1234), lambda m: m(fixed), label, atol)
    return head
