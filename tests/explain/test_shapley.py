"""Shapley values over inputs: exact (efficiency, symmetry, null inputs), through the missing-modality path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.errors import MmzooError

KEYS = ("a", "b", "c")
FUSIONS = {
    "concat": ({"type": "concat", "dim": 6}, KEYS),
    "sum": ({"type": "sum", "dim": 6}, KEYS),
    "gated": ({"type": "gated", "dim": 6}, KEYS),
    "attention": ({"type": "attention", "dim": 6, "heads": 2}, KEYS),
    "cross-attention": ({"type": "cross-attention", "dim": 6, "heads": 2}, KEYS),
    "bilinear": ({"type": "bilinear", "dim": 6, "rank": 2}, KEYS),
    "film": ({"type": "film", "condition": "a", "target": "b"}, ("a", "b")),
}


def build(fusion: dict, keys=KEYS, seed: int = 0, encoders=None):
    torch.manual_seed(seed)
    if encoders is None:
        if fusion["type"] == "cross-attention":
            encoders = {k: {"type": "byte-gru", "embed_dim": 4, "hidden_dim": 4, "output_dim": 5} for k in keys}
        else:
            encoders = {k: {"type": "mlp", "in_dim": 3, "hidden_dims": [], "output_dim": 5} for k in keys}
    return mmzoo.create_model({"encoders": encoders, "fusion": fusion,
                               "head": {"type": "classification", "num_classes": 4}})


def data(keys=KEYS, count: int = 4, text: bool = False) -> list[dict]:
    rng = np.random.default_rng(1)
    if text:
        return [{k: "word " * int(rng.integers(1, 4)) + k for k in keys} for _ in range(count)]
    return [{k: rng.standard_normal(3).astype(np.float32) for k in keys} for _ in range(count)]


@pytest.mark.parametrize("name", list(FUSIONS))
def test_values_add_up_to_the_score_with_every_input_minus_the_score_with_none(name):
    fusion, keys = FUSIONS[name]
    model = build(fusion, keys)
    examples = data(keys, text=name == "cross-attention")
    examples[2] = {k: v for k, v in examples[2].items() if k != keys[0]}  # one example lacks an input
    explanations = model.explain(examples, within=False)
    model.eval()
    with torch.no_grad():
        logits = model(model.preprocess(examples)).outputs
    for i, e in enumerate(explanations):
        assert e.target == int(logits[i].argmax())
        assert e.score == pytest.approx(float(logits[i, e.target]), abs=1e-5)
        assert abs(sum(e.shapley.values()) - (e.score - e.baseline)) < 1e-5
        assert set(e.shapley) == set(keys) and e.subsets[""] == e.baseline
    assert explanations[2].shapley[keys[0]] == 0.0 and keys[0] not in explanations[2].present


@pytest.mark.parametrize("name", ["concat", "gated", "bilinear"])
def test_each_subset_scores_what_the_model_gives_the_example_without_the_other_inputs(name):
    fusion, keys = FUSIONS[name]
    model = build(fusion, keys).eval()
    example = data(keys, count=1)[0]
    explanation = model.explain([example], within=False)[0]
    for size in range(1, len(keys) + 1):
        for subset in itertools.combinations(keys, size):
            reduced = {k: example[k] for k in subset}
            with torch.no_grad():
                logit = model(model.preprocess([reduced])).outputs[0, explanation.target]
            assert explanation.subsets["+".join(sorted(subset))] == pytest.approx(float(logit), abs=1e-5)


def test_the_baseline_is_the_model_with_no_input_at_all():
    concat = build({"type": "concat"}).eval()
    with torch.no_grad():
        nothing = concat(concat.preprocess([{}])).outputs[0]  # every input missing: absent embeddings
    e = concat.explain(data(count=1), within=False)[0]
    assert e.baseline == pytest.approx(float(nothing[e.target]), abs=1e-6)
    summed = build({"type": "sum", "dim": 6}).eval()  # masks out: fuses nothing to zeros
    with torch.no_grad():
        expected = summed.head(torch.zeros(1, 6))[0]
    e = summed.explain(data(count=1), within=False)[0]
    assert e.baseline == pytest.approx(float(expected[e.target]), abs=1e-6)


def test_an_input_the_model_ignores_gets_zero_and_interchangeable_inputs_get_the_same():
    model = build({"type": "sum", "dim": 6}).eval()
    with torch.no_grad():
        model.fusion.proj["c"].weight.zero_()
        model.fusion.proj["c"].bias.zero_()
        model.encoders["b"].load_state_dict(model.encoders["a"].state_dict())
        model.fusion.proj["b"].load_state_dict(model.fusion.proj["a"].state_dict())
    examples = [{"a": x["a"], "b": x["a"].copy(), "c": x["c"]} for x in data()]
    for e in model.explain(examples, within=False):
        assert abs(e.shapley["c"]) < 1e-6  # null player
        assert e.shapley["a"] == pytest.approx(e.shapley["b"], abs=1e-6)  # symmetry
        assert abs(e.shapley["a"] + e.shapley["b"] - (e.score - e.baseline)) < 1e-5


def test_target_picks_the_explained_output():
    model = build({"type": "concat"})
    explanations = model.explain(data(count=2), target=[3, 1], within=False)
    assert [e.target for e in explanations] == [3, 1]
    model.labels = ["w", "x", "y", "z"]
    assert model.explain(data(count=1), target=2, within=False)[0].label == "y"
    with pytest.raises(MmzooError, match=r"target 4 is out of range; the model has outputs 0..3"):
        model.explain(data(count=1), target=4)
    with pytest.raises(MmzooError, match="one per example"):
        model.explain(data(count=2), target=[1])


def test_explanations_that_cannot_be_computed_are_refused_clearly():
    many = {f"m{i}": {"type": "mlp", "in_dim": 2, "hidden_dims": [], "output_dim": 2} for i in range(7)}
    model = build({"type": "concat"}, encoders=many)
    with pytest.raises(MmzooError, match=r"over 7 inputs need 2\^7 = 128 passes .* at most 6 inputs"):
        model.explain([{f"m{i}": [0.0, 1.0] for i in range(7)}])
    torch.manual_seed(0)
    clip = mmzoo.create_model({"encoders": {"a": {"type": "mlp", "in_dim": 3, "output_dim": 4},
                                            "b": {"type": "mlp", "in_dim": 3, "output_dim": 4}},
                               "fusion": {"type": "project", "dim": 4}, "head": {"type": "contrastive"}})
    with pytest.raises(MmzooError, match="fusion 'project' keeps modalities apart"):
        clip.explain(data(("a", "b"), count=2))
    model = build({"type": "concat"})
    model.fusion.handles_missing = False  # as a third-party fusion written before missing modalities
    with pytest.raises(MmzooError, match="fusion 'concat' does not handle missing inputs"):
        model.explain(data(count=1))
    with pytest.raises(MmzooError, match="non-empty list of example dicts"):
        build({"type": "concat"}).explain({"a": [1, 2, 3]})


def test_the_model_keeps_its_mode():
    model = build({"type": "gated", "dim": 4}).train()
    model.explain(data(count=1), within=False)
    assert model.training
