"""The one reader of saved models: config.json fields checked as hostile input, labels, provenance."""

from __future__ import annotations

import json

import pytest
import torch

import mmzoo
from mmzoo.errors import MmzooError, SpecError
from mmzoo.saved import SavedModel, read_model_dir

SPEC = {"encoders": {"x": {"type": "mlp", "in_dim": 3, "hidden_dims": [5], "output_dim": 4}},
        "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 3}}
EXAMPLES = [{"x": [0.1, 0.2, 0.3]}, {"x": [1.0, -1.0, 0.5]}]


def saved_dir(tmp_path, **config_changes):
    torch.manual_seed(0)
    model = mmzoo.create_model(SPEC)
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config.update(config_changes)
    path.write_text(json.dumps(config))
    return tmp_path / "m", model


def test_read_model_dir_gives_every_field_typed(tmp_path):
    directory, model = saved_dir(tmp_path, name="tiny", labels=["a", "b", "c"], metrics={"accuracy": 1},
                                 datasets=["toy", "toy"], training={"steps": 7, "eval_split": "test"})
    saved = read_model_dir(directory)
    assert isinstance(saved, SavedModel) and saved.spec == model.typed_spec and saved.name == "tiny"
    assert saved.labels == ("a", "b", "c") and saved.metrics == {"accuracy": 1.0} and saved.datasets == ("toy",)
    assert saved.training == {"steps": 7, "eval_split": "test"} and saved.mmzoo_version == mmzoo.__version__
    assert saved.requires == {"mmzoo": mmzoo.__version__}
    assert saved.weights_file == directory / "model.safetensors" and saved.pickles == ()
    assert saved.provenance == {"metrics": {"accuracy": 1}, "datasets": ["toy", "toy"],
                                "training": {"steps": 7, "eval_split": "test"}}


@pytest.mark.parametrize("change, message", [
    ({"requires": {"evil; rm -rf ~": "1"}}, "requires: 'evil; rm -rf ~' is not a distribution name"),
    ({"requires": {"mmzoo": "1 && curl x"}}, "requires.mmzoo: expected a version"),
    ({"requires": ["mmzoo"]}, "requires: expected a mapping"),
    ({"name": "two\nlines"}, "name: expected a one-line name"),
    ({"labels": "cat"}, "labels: expected a list of class names"),
    ({"labels": ["cat", 3, "dog"]}, "labels[1]: expected a non-empty one-line class name"),
    ({"labels": ["cat", "cat", "dog"]}, "labels: class names must be distinct; repeated: 'cat'"),
    ({"metrics": {"accuracy": float("nan")}}, "metrics.accuracy: expected a finite number"),
    ({"metrics": {"top 1": 0.5}}, "metrics: 'top 1' is not a metric name"),
    ({"datasets": "toy"}, "datasets: expected a list of names"),
    ({"training": {"steps": -1}}, "training.steps: expected a number of steps"),
    ({"mmzoo_version": "0.1 beta"}, "mmzoo_version: expected a version"),
    ({"format": "transformers"}, "config.json is not an mmzoo config"),
    ({"spec": {**SPEC, "encoders": {}}}, "config.json spec.encoders: needs at least one encoder"),
])
def test_every_bad_field_is_one_spec_error_naming_it(tmp_path, change, message):
    directory, _ = saved_dir(tmp_path, **change)
    with pytest.raises(SpecError) as err:
        read_model_dir(directory)
    assert message in str(err.value) and str(directory) in str(err.value)
    with pytest.raises(SpecError):  # create_model reads through the same reader
        mmzoo.create_model(directory)


def test_config_json_that_is_not_json_or_absent(tmp_path):
    with pytest.raises(SpecError, match="not an mmzoo model directory"):
        read_model_dir(tmp_path)
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(SpecError, match="config.json: not valid JSON"):
        read_model_dir(tmp_path)


def test_labels_round_trip_and_are_checked_against_the_head(tmp_path):
    model = mmzoo.create_model(SPEC)
    assert model.labels is None and "labels" not in model.config()
    model.labels = ["cat", "dog", "bird"]
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["labels"] == ["cat", "dog", "bird"]
    assert mmzoo.create_model(tmp_path / "m").labels == ("cat", "dog", "bird")
    # a head rebuilt for other classes does not inherit the old names
    assert mmzoo.create_model(tmp_path / "m", head={"num_classes": 2}).labels is None
    with pytest.raises(SpecError, match=r"model.labels: 2 class names for a head with 3 outputs"):
        model.labels = ["cat", "dog"]
    with pytest.raises(SpecError, match="distinct"):
        model.labels = ["cat", "cat", "dog"]
    path = tmp_path / "m" / "config.json"
    path.write_text(path.read_text().replace('"bird"', '"bird", "fish"'))
    with pytest.raises(SpecError, match=r"config.json labels: 4 class names for a head with 3 outputs"):
        mmzoo.create_model(tmp_path / "m")


def test_a_loaded_model_keeps_its_provenance_and_extra_replaces_it(tmp_path):
    directory, _ = saved_dir(tmp_path, metrics={"accuracy": 0.5}, datasets=["toy"], future_key={"a": 1})
    loaded = mmzoo.create_model(directory)
    assert loaded.provenance == {"metrics": {"accuracy": 0.5}, "datasets": ["toy"], "future_key": {"a": 1}}
    loaded.save_pretrained(tmp_path / "again", extra={"metrics": {"accuracy": 0.9}})
    again = read_model_dir(tmp_path / "again")
    assert again.metrics == {"accuracy": 0.9} and again.datasets == ("toy",)
    assert again.config["future_key"] == {"a": 1}
    with pytest.raises(MmzooError, match="'labels' is reserved"):
        loaded.save_pretrained(tmp_path / "x", extra={"labels": ["a"]})


def test_model_spec_is_a_dict_copy_and_typed_spec_the_frozen_spec():
    model = mmzoo.create_model(SPEC)
    spec = model.spec
    spec["head"]["num_classes"] = 99
    assert model.spec == SPEC and model.typed_spec.head.params["num_classes"] == 3
    assert list(model.part_modules()) == model.typed_spec.paths() == ["encoders.x", "fusion", "head"]
