"""model.predict: label names and scores per example for every kind of head, batched, in eval mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.errors import MmzooError
from mmzoo.inference.results import ClassPrediction, MultilabelPrediction, RegressionPrediction
from tests.hub.support import EXAMPLES, SPEC, tiny_model, train_steps

LABELS = ["cat", "stocks", "rain"]


def reference_probabilities(model, examples) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(model.preprocess([{k: v for k, v in e.items() if k != "target"} for e in examples])).outputs


def test_classification_gives_the_top_k_names_and_softmax_scores():
    model = train_steps(tiny_model())
    model.labels = LABELS
    probs = reference_probabilities(model, EXAMPLES).softmax(dim=1)
    results = model.predict(EXAMPLES, top_k=2)
    assert [type(r) for r in results] == [ClassPrediction] * len(EXAMPLES)
    for row, result in zip(probs, results):
        order = row.argsort(descending=True)[:2].tolist()
        assert result.labels == tuple(LABELS[i] for i in order) and result.named
        assert result.scores == pytest.approx(row[order].tolist(), abs=1e-6)
        assert result.label == LABELS[order[0]] and result.score == pytest.approx(float(row[order[0]]), abs=1e-6)
    every = model.predict(EXAMPLES[0], top_k=None)  # one example alone gives one result
    assert isinstance(every, ClassPrediction) and sorted(every.labels) == sorted(LABELS)
    assert sum(every.scores) == pytest.approx(1.0, abs=1e-5)
    assert json.loads(json.dumps(every.to_dict()))["labels"] == list(every.labels)


def test_batching_the_mode_and_extra_keys_do_not_change_predictions():
    model = train_steps(tiny_model())
    model.labels = LABELS
    model.train()
    together = model.predict(EXAMPLES, top_k=3, batch_size=32)
    assert model.training  # the mode is restored
    apart = model.predict([{**e, "id": i, "target": 99} for i, e in enumerate(EXAMPLES)], top_k=3, batch_size=1)
    for a, b in zip(together, apart):
        assert a.labels == b.labels and a.scores == pytest.approx(b.scores, abs=1e-6)


def test_a_model_without_labels_names_classes_by_index_and_says_so():
    model = tiny_model()
    with pytest.warns(UserWarning, match="this model has no labels"):
        result = model.predict(EXAMPLES[0])
    assert result.label in ("0", "1", "2") and result.named is False
    assert result.to_dict()["named"] is False


def test_multilabel_gives_the_labels_over_the_threshold():
    model = mmzoo.create_model(SPEC, head={"type": "multilabel", "num_labels": 3})
    model.labels = ["red", "round", "small"]
    probs = reference_probabilities(model, EXAMPLES).sigmoid()
    for threshold in (0.3, 0.5, 0.7):
        for row, result in zip(probs, model.predict(EXAMPLES, threshold=threshold)):
            assert isinstance(result, MultilabelPrediction) and result.threshold == threshold
            chosen = [i for i in row.argsort(descending=True).tolist() if row[i] >= threshold]
            assert result.labels == tuple(model.labels[i] for i in chosen)
            assert result.probabilities == pytest.approx(dict(zip(model.labels, row.tolist())), abs=1e-6)


def test_regression_gives_values_by_name():
    model = mmzoo.create_model(SPEC, head={"type": "regression", "num_outputs": 2})
    model.labels = ["height", "width"]
    outputs = reference_probabilities(model, EXAMPLES)
    results = model.predict(EXAMPLES)
    assert all(isinstance(r, RegressionPrediction) for r in results)
    assert results[1].values == pytest.approx({"height": float(outputs[1, 0]), "width": float(outputs[1, 1])})
    single = mmzoo.create_model(SPEC, head={"type": "regression"})
    assert single.predict(EXAMPLES[0]).value == pytest.approx(float(reference_probabilities(single, EXAMPLES)[0, 0]))
    assert single.predict(EXAMPLES[0]).to_dict() == {"kind": "regression", "values": {"0": pytest.approx(
        float(reference_probabilities(single, EXAMPLES)[0, 0]))}, "named": False}


def test_a_one_encoder_model_takes_raw_values_and_image_files(tmp_path):
    from PIL import Image

    spec = {"encoders": {"image": {"type": "cnn", "channels": [4], "output_dim": 8, "image_size": 16}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    model.labels = ["dark", "light"]
    pixels = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    from_file, from_array = model.predict([tmp_path / "x.png", pixels], top_k=2)
    assert from_file.labels == from_array.labels and from_file.scores == pytest.approx(from_array.scores)
    assert model.predict(str(tmp_path / "x.png")).labels == from_file.labels[:1]


def test_mistakes_are_clear_errors():
    model = tiny_model()
    model.labels = LABELS
    with pytest.raises(MmzooError, match="predict got no examples"):
        model.predict([])
    with pytest.raises(MmzooError, match="top_k must be a positive integer"):
        model.predict(EXAMPLES, top_k=0)
    with pytest.raises(MmzooError, match="batch_size must be a positive integer"):
        model.predict(EXAMPLES, batch_size=0)
    with pytest.raises(MmzooError, match=r"predict takes a list of examples, each a dict .* text, x"):
        model.predict("a cat")
    with pytest.raises(MmzooError, match=r"no example has 'x', which this model reads \(text, x\), but they have 'xx'"):
        model.predict([{"text": "a cat", "xx": [0.0, 0.0, 0.0, 0.0]}])  # a misspelt key is not a missing input


def test_an_example_may_lack_an_input():
    model = tiny_model()
    model.labels = LABELS
    alone = model.predict({"text": "a cat on a mat"})  # no 'x': the fusion leaves it out
    assert model.predict({"text": "a cat on a mat", "x": None}).labels == alone.labels
    both = model.predict([{"text": "a cat on a mat"}, EXAMPLES[1]])
    assert both[0].labels == alone.labels and both[1].labels == model.predict(EXAMPLES[1]).labels
