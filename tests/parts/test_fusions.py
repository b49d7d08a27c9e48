"""Builtin fusions: semantics (what each computes), masks, and construction errors."""

from __future__ import annotations

import pytest
import torch

from mmzoo.errors import BuildError
from mmzoo.outputs import EncoderOutput
from mmzoo.parts.fusions import (
    AttentionFusion,
    BilinearFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    ProjectFusion,
    SumFusion,
)

DIMS = {"a": 3, "b": 4}


def pooled(batch: int = 5, dims=DIMS, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, d, generator=g) for k, d in dims.items()}


def test_concat_without_dim_is_exactly_the_concatenation_in_input_order():
    fusion = ConcatFusion({"b": 4, "a": 3})
    x = pooled()
    assert fusion.output_dim == 7
    assert torch.equal(fusion({"a": EncoderOutput(x["a"]), "b": x["b"]}), torch.cat([x["b"], x["a"]], dim=1))


def test_concat_with_dim_projects():
    fusion = ConcatFusion(DIMS, dim=2)
    x = pooled()
    assert fusion(x).shape == (5, 2) and fusion.output_dim == 2
    expected = fusion.proj(torch.cat([x["a"], x["b"]], dim=1))
    assert torch.allclose(fusion(x), expected)


def test_sum_is_additive_across_modalities_and_bilinear_is_not():
    x1, x2 = pooled(seed=1), pooled(seed=2)

    def swap_gap(fusion):  # f(a1,b1) + f(a2,b2) - f(a1,b2) - f(a2,b1): zero iff no a*b interaction
        f = lambda a, b: fusion({"a": a, "b": b})  # noqa: E731
        return (
            (f(x1["a"], x1["b"]) + f(x2["a"], x2["b"]) - f(x1["a"], x2["b"]) - f(x2["a"], x1["b"]))
            .abs()
            .max()
        )

    assert swap_gap(SumFusion(DIMS, dim=6)) < 1e-5
    assert swap_gap(BilinearFusion(DIMS, dim=6, rank=2)) > 1e-2


def test_bilinear_equals_full_tensor_fusion_with_the_reconstructed_weight():
    torch.manual_seed(0)
    fusion = BilinearFusion(DIMS, dim=5, rank=3)
    with torch.no_grad():
        fusion.bias.normal_()
    x = pooled()
    za = torch.cat([x["a"], torch.ones(5, 1)], dim=1)
    zb = torch.cat([x["b"], torch.ones(5, 1)], dim=1)
    # W[i, j, d] = sum_r w_r A[r, i, d] B[r, j, d]: the rank-3 weight of tensor fusion.
    weight = torch.einsum("r,rid,rjd->ijd", fusion.rank_weights, fusion.factors["a"], fusion.factors["b"])
    expected = torch.einsum("bi,bj,ijd->bd", za, zb, weight) + fusion.bias
    assert torch.allclose(fusion(x), expected, atol=1e-5)


def test_gated_output_is_a_gate_weighted_mix_of_bounded_modality_features():
    fusion = GatedFusion({"a": 3, "b": 4, "c": 2}, dim=6)
    x = pooled(dims={"a": 3, "b": 4, "c": 2})
    gates = fusion.gates(x)
    assert gates.shape == (5, 3, 6) and bool((gates > 0).all())
    assert torch.allclose(gates.sum(dim=1), torch.ones(5, 6))
    hidden = torch.stack([torch.tanh(fusion.proj[k](x[k])) for k in "abc"], dim=1)
    assert torch.allclose(fusion(x), (gates * hidden).sum(dim=1))
    assert bool((fusion(x).abs() <= 1).all())


def test_attention_pools_over_modalities_regardless_of_dict_order():
    fusion = AttentionFusion({"a": 3, "b": 4, "c": 2}, dim=8, heads=2).eval()
    x = pooled(dims={"a": 3, "b": 4, "c": 2})
    reordered = {k: x[k] for k in ("c", "a", "b")}
    assert torch.equal(fusion(x), fusion(reordered))
    changed = dict(x, c=x["c"] + 1.0)
    assert not torch.allclose(fusion(x), fusion(changed))  # every modality counts


def tokens(batch, length, dim, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return EncoderOutput(
        torch.randn(batch, dim, generator=g), torch.randn(batch, length, dim, generator=g), mask
    )


def test_cross_attention_ignores_padded_tokens():
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(DIMS, dim=8, heads=2, layers=2).eval()
    a, b = tokens(3, 5, 3, [5, 2, 1], seed=1), tokens(3, 4, 4, [1, 4, 3], seed=2)
    reference = fusion({"a": a, "b": b})
    noisy_a = a.tokens.masked_fill(~a.mask.unsqueeze(-1), 1e4)
    noisy_b = torch.where(b.mask.unsqueeze(-1), b.tokens, torch.randn_like(b.tokens) * 50)
    out = fusion(
        {"a": EncoderOutput(a.pooled, noisy_a, a.mask), "b": EncoderOutput(b.pooled, noisy_b, b.mask)}
    )
    assert torch.allclose(reference, out, atol=1e-5)
    # Trimming the padding away entirely gives the same result too.
    trimmed = fusion(
        {
            "a": EncoderOutput(a.pooled[1:2], a.tokens[1:2, :2], a.mask[1:2, :2]),
            "b": EncoderOutput(b.pooled[1:2], b.tokens[1:2], b.mask[1:2]),
        }
    )
    assert torch.allclose(reference[1:2], trimmed, atol=1e-5)
    # A real token does matter.
    changed = a.tokens.clone()
    changed[1, 0] += 1.0
    assert not torch.allclose(reference, fusion({"a": EncoderOutput(a.pooled, changed, a.mask), "b": b}))


def test_cross_attention_takes_a_pooled_only_feature_as_one_token():
    fusion = CrossAttentionFusion(DIMS, dim=4, heads=1).eval()
    a = tokens(2, 3, 3, [3, 1])
    x = torch.randn(2, 4)
    assert torch.allclose(
        fusion({"a": a, "b": x}),
        fusion({"a": a, "b": EncoderOutput(x, x.unsqueeze(1), torch.ones(2, 1, dtype=torch.bool))}),
    )
    assert CrossAttentionFusion.requires_tokens is True


def test_cross_attention_survives_an_example_with_an_all_padding_context():
    fusion = CrossAttentionFusion(DIMS, dim=4, heads=1)
    a = tokens(2, 3, 3, [3, 1])
    b = tokens(2, 2, 4, [2, 0])  # example 1 has no real b token
    out = fusion({"a": a, "b": b})
    assert bool(torch.isfinite(out).all())


def test_film_scales_and_shifts_the_target_by_the_condition():
    torch.manual_seed(0)
    fusion = FiLMFusion(DIMS, condition="a", target="b", dim=6)
    x = pooled()
    gamma, beta = fusion.film(x["a"]).chunk(2, dim=-1)
    assert torch.allclose(fusion(x), (1 + gamma) * fusion.proj(x["b"]) + beta)
    assert fusion.output_dim == 6
    with torch.no_grad():  # no modulation: the output is the projected target, whatever the condition
        fusion.film.weight.zero_()
        fusion.film.bias.zero_()
    other = dict(x, a=torch.randn(5, 3))
    assert torch.allclose(fusion(x), fusion.proj(x["b"])) and torch.allclose(fusion(x), fusion(other))


def test_film_without_dim_keeps_the_target_width():
    assert FiLMFusion(DIMS, condition="b", target="a").output_dim == 3


def test_project_keeps_modalities_apart():
    fusion = ProjectFusion(DIMS, dim=4)
    x = pooled()
    out = fusion(x)
    assert fusion.output_kind == "dict" and set(out) == {"a", "b"}
    assert torch.allclose(out["a"], fusion.proj["a"](x["a"])) and out["b"].shape == (5, 4)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: CrossAttentionFusion({"a": 3}),
            "fusion 'cross-attention' fuses at least 2 modalities, but the "
            r"model has 1 \(a\)",
        ),
        (lambda: BilinearFusion({"a": 3}), "fusion 'bilinear' fuses at least 2 modalities"),
        (lambda: GatedFusion({"a": 3}), "fusion 'gated' fuses at least 2 modalities"),
        (
            lambda: CrossAttentionFusion(DIMS, dim=10, heads=4),
            r"'dim' \(10\) must be divisible by 'heads' \(4\)",
        ),
        (lambda: AttentionFusion(DIMS, dim=6, heads=4), r"'dim' \(6\) must be divisible by 'heads' \(4\)"),
        (lambda: BilinearFusion(DIMS, rank=0), "fusion 'bilinear': 'rank' must be a positive integer, got 0"),
        (lambda: SumFusion(DIMS, dim="big"), "fusion 'sum': 'dim' must be a positive integer, got 'big'"),
        (lambda: ConcatFusion({}), "fusion 'concat': input_dims must be a non-empty mapping"),
        (lambda: ConcatFusion({"a": 0}), r"input_dims\['a'\]' must be a positive integer, got 0"),
        (
            lambda: FiLMFusion(DIMS, target="b"),
            "fusion 'film': 'condition' is missing. Set it to one of the "
            r"encoder keys \['a', 'b'\]",
        ),
        (
            lambda: FiLMFusion({"image": 3, "text": 4}, condition="imag", target="text"),
            "'condition' is 'imag', which is not an encoder key. Did you mean 'image'?",
        ),
        (lambda: FiLMFusion(DIMS, condition="a", target="a"), "'condition' and 'target' must differ"),
        (
            lambda: FiLMFusion({"a": 1, "b": 2, "c": 3}, condition="a", target="b"),
            r"fuses exactly two modalities .* also has \['c'\]",
        ),
    ],
)
def test_bad_construction_raises_build_errors_naming_the_fusion(build, message):
    with pytest.raises(BuildError, match=message):
        build()


def test_forward_reports_missing_features():
    with pytest.raises(BuildError, match=r"fusion 'sum': features for \['b'\] are missing"):
        SumFusion(DIMS, dim=2)({"a": torch.zeros(1, 3)})
    with pytest.raises(BuildError, match="feature 'a' must be an EncoderOutput or a Tensor, got list"):
        SumFusion(DIMS, dim=2)({"a": [0.0], "b": torch.zeros(1, 4)})
