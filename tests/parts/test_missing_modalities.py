"""Missing modalities through whole models: every builtin fusion with each subset of inputs missing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.errors import MmzooError

KEYS = ("a", "b", "c")
ENCODERS = {key: {"type": "mlp", "in_dim": 3 + i, "hidden_dims": [], "output_dim": 4 + i} for i, key in enumerate(KEYS)}
# cross-attention needs token sequences: byte-gru gives one token per byte (with padding between examples)
TOKEN_ENCODERS = {key: {"type": "byte-gru", "embed_dim": 4, "hidden_dim": 4, "output_dim": 4 + i}
                  for i, key in enumerate(KEYS)}
FUSIONS = {
    "concat": {"type": "concat", "dim": 6},
    "sum": {"type": "sum", "dim": 6},
    "gated": {"type": "gated", "dim": 6},
    "attention": {"type": "attention", "dim": 6, "heads": 2},
    "cross-attention": {"type": "cross-attention", "dim": 6, "heads": 2},
    "bilinear": {"type": "bilinear", "dim": 6, "rank": 2},
}
MASKING = {"sum", "gated", "attention", "cross-attention"}  # an example with no input at all is an error
SUBSETS = [s for r in range(1, len(KEYS) + 1) for s in itertools.combinations(KEYS, r)]


def build(fusion: dict, keys=KEYS, head=None):
    torch.manual_seed(0)
    encoders = TOKEN_ENCODERS if fusion.get("requires_tokens", fusion["type"] == "cross-attention") else ENCODERS
    spec = {"encoders": {k: encoders[k] for k in keys}, "fusion": fusion,
            "head": head or {"type": "classification", "num_classes": 3}}
    return mmzoo.create_model(spec)


def examples(keys=KEYS, count: int = 5, seed: int = 0, target: bool = True, text: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if text:
            example = {k: "x" * int(rng.integers(1, 9)) + k for k in keys}
        else:
            example = {k: rng.standard_normal(3 + KEYS.index(k)).astype(np.float32) for k in keys}
        if target:
            example["target"] = i % 3
        out.append(example)
    return out


def without(batch_examples: list[dict], gone, rows) -> list[dict]:
    """The examples with the keys ``gone`` taken away from ``rows`` (alternately absent and None)."""
    out = [dict(e) for e in batch_examples]
    for n, row in enumerate(rows):
        for key in gone:
            if n % 2:
                out[row][key] = None
            else:
                del out[row][key]
    return out


@pytest.mark.parametrize("gone", SUBSETS, ids=["-".join(s) for s in SUBSETS])
@pytest.mark.parametrize("name", list(FUSIONS))
def test_every_fusion_with_each_subset_missing(name, gone):
    model = build(FUSIONS[name])
    data = without(examples(text=name == "cross-attention"), gone, rows=[1, 2, 4])
    batch = model.preprocess(data)
    assert [bool(v) for v in batch["present"][gone[0]]] == [True, False, False, True, False]
    if name in MASKING and len(gone) == len(KEYS):
        with pytest.raises(MmzooError, match=r"example\(s\) 1, 2, 4 have none of the inputs a, b, c"):
            model(batch)
        return
    model.train()
    out = model(batch)
    assert out.outputs.shape == (5, 3) and bool(torch.isfinite(out.outputs).all())
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)

    model.eval()
    with torch.no_grad():
        together = model(model.preprocess(data)).outputs
        for row in range(5):  # each example alone gives what it gets inside the incomplete batch
            alone = model(model.preprocess([data[row]])).outputs
            torch.testing.assert_close(alone[0], together[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_a_missing_input_is_not_read_whatever_the_encoder_would_have_given(name):
    """Masks honoured through the model: the fusion sees zero-filled rows, and junk there changes nothing."""
    model = build(FUSIONS[name]).eval()
    data = without(examples(text=name == "cross-attention"), ["b"], rows=[0, 3])
    with torch.no_grad():
        features, present = model.encode(model.preprocess(data))
        _, reference = model.decode(features, present)
        features["b"].pooled[~present["b"]] = 1e4
        if features["b"].tokens is not None:
            features["b"].tokens[~present["b"]] = -1e4
        _, noisy = model.decode(features, present)
    torch.testing.assert_close(noisy, reference)


def test_concat_and_bilinear_put_the_learned_absent_embedding_in_place_of_a_missing_input():
    model = build({"type": "concat"}).eval()
    with torch.no_grad():
        model.fusion.absent["b"].copy_(torch.arange(5.0))
        out = model(model.preprocess(without(examples(), ["b"], rows=[2])))
    assert torch.equal(out.fused[2, 4:9], torch.arange(5.0))
    bilinear = build({"type": "bilinear", "dim": 4})
    assert set(bilinear.fusion.absent) == set(KEYS)


def test_an_example_missing_everything_still_fuses_with_concat_bilinear_and_film():
    for fusion, keys in (({"type": "concat"}, KEYS), ({"type": "bilinear", "dim": 4}, KEYS),
                         ({"type": "film", "condition": "a", "target": "b"}, ("a", "b"))):
        model = build(fusion, keys)
        out = model(model.preprocess([*examples(keys, 2), {"target": 1}]))
        assert bool(torch.isfinite(out.outputs).all())
        out.loss.backward()


def test_sum_and_gated_add_only_the_inputs_an_example_has():
    model = build(FUSIONS["sum"]).eval()
    data = without(examples(), ["a"], rows=[1])
    with torch.no_grad():
        features, present = model.encode(model.preprocess(data))
        fused, _ = model.decode(features, present)
        expected = sum(model.fusion.proj[k](features[k].pooled[1]) for k in ("b", "c"))
    torch.testing.assert_close(fused[1], expected)
    gated = build(FUSIONS["gated"]).eval()
    with torch.no_grad():
        features, present = gated.encode(gated.preprocess(data))
        gates = gated.fusion.gates(features, present)
    assert bool((gates[1, 0] == 0).all()) and torch.allclose(gates[1].sum(dim=0), torch.ones(6))
    assert bool((gates[0, 0] > 0).all())


@pytest.mark.parametrize("gone", [("a",), ("b",), ("a", "b")])
def test_film_leaves_out_a_missing_condition_and_stands_in_for_a_missing_target(gone):
    model = build({"type": "film", "condition": "a", "target": "b"}, ("a", "b")).eval()
    data = without(examples(("a", "b")), gone, rows=[1])
    with torch.no_grad():
        features, present = model.encode(model.preprocess(data))
        fused, _ = model.decode(features, present)
        fusion = model.fusion
        target = features["b"].pooled[1] if "b" not in gone else fusion.absent_target
        if "a" in gone:  # the unconditioned target
            expected = fusion.proj(target)
        else:
            gamma, beta = fusion.film(features["a"].pooled[1]).chunk(2)
            expected = (1 + gamma) * fusion.proj(target) + beta
    torch.testing.assert_close(fused[1], expected)


def test_contrastive_pairs_only_examples_that_have_both_sides():
    torch.manual_seed(0)
    model = mmzoo.create_model({"encoders": {k: ENCODERS[k] for k in ("a", "b")},
                                "fusion": {"type": "project", "dim": 6}, "head": {"type": "contrastive"}})
    data = examples(("a", "b"), count=6, target=False)
    incomplete = without(data, ["b"], rows=[1, 4])
    out = model(model.preprocess(incomplete))
    assert bool(torch.isinf(out.outputs[1]).all()) and bool(torch.isinf(out.outputs[:, 4]).all())
    complete_rows = [data[i] for i in (0, 2, 3, 5)]
    expected = model(model.preprocess(complete_rows)).loss
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    metrics = model.head.metrics(out.outputs.detach(), None)
    assert metrics == model.head.metrics(model(model.preprocess(complete_rows)).outputs.detach(), None)
    nothing = model(model.preprocess(without(data[:2], ["a"], rows=[0, 1])))
    assert float(nothing.loss.detach()) == 0.0 and nothing.loss.requires_grad


def test_absent_embeddings_take_part_in_every_forward():
    """A complete batch gives the absent embeddings a (zero) gradient, so DistributedDataParallel sees
    them used in every step rather than only in steps where an input is missing."""
    model = build({"type": "concat"})
    model(model.preprocess(examples())).loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in model.fusion.absent.values())


def test_complete_batches_carry_no_presence_masks_and_a_key_no_example_has_is_left_out():
    model = build({"type": "concat"})
    assert "present" not in model.preprocess(examples())
    batch = model.preprocess(without(examples(), ["c"], rows=range(5)))
    assert "c" not in batch and not batch["present"]["c"].any()
    out = model(batch)
    assert out.features["c"].pooled.shape == (5, 6) and not out.features["c"].pooled.any()


def test_a_batch_whose_masks_disagree_with_its_inputs_is_refused():
    model = build({"type": "concat"})
    batch = model.preprocess(without(examples(), ["a"], rows=[1]))
    batch["present"]["a"][1] = True  # says five examples have 'a', but four inputs were preprocessed
    with pytest.raises(MmzooError, match="encoder 'a' gave 4 rows but batch\\['present'\\]\\['a'\\] marks 5"):
        model(batch)


def test_an_encoder_no_example_of_a_training_batch_needs_still_gets_zero_gradients():
    """So that DistributedDataParallel finds every parameter used, whichever inputs a rank's batch lacks."""
    model = build({"type": "concat"}).train()
    model(model.preprocess(without(examples(), ["c"], rows=range(5)))).loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in model.encoders["c"].parameters())
    assert any(p.grad.any() for p in model.encoders["a"].parameters())
