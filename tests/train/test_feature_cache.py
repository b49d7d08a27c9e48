"""The feature cache in training: a cached run equals the uncached one, and what is (not) cached."""

from __future__ import annotations

import json

import pytest

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.metrics import read_metrics
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, toy_config


@pytest.fixture
def feature_root(tmp_path, monkeypatch):
    """An empty mmzoo cache for the test (the feature entries go under <cache>/features)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("MMZOO_CACHE", str(root))
    return root / "features"


def run(tmp_path, name, **changes):
    config = validate_config(toy_config(tmp_path / name, **changes))
    return train(config)


def losses(tmp_path, name):
    records = read_metrics(tmp_path / name / "metrics.jsonl")
    return [r["loss"] for r in records if "loss" in r and "split" not in r], [
        r["eval_loss"] for r in records if r.get("split") == "eval"
    ]


def run_info(tmp_path, name):
    return json.loads((tmp_path / name / "run.json").read_text())


FROZEN = {"optim__freeze": ["encoders.img"], "optim__steps": 12, "eval_every": 4,
          "data__train": {"dataset": "toy-blobs", "params": {"size": 40}}}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_cached_run_equals_the_uncached_run(toys, tmp_path, feature_root, workers):
    """Same seed: the same losses, eval losses and final weights, built once then read (first run
    builds the entries, the second reads them), with the DataLoader in-process or in 2 workers."""
    common = {**FROZEN, "data__num_workers": workers}
    run(tmp_path, "plain", data__cache_features=False, **common)
    run(tmp_path, "built", data__cache_features=True, **common)
    run(tmp_path, "read", data__cache_features=True, **common)
    assert run_info(tmp_path, "built")["feature_cache"]["cached"]["img"]["train"]["built"] is True
    assert run_info(tmp_path, "read")["feature_cache"]["cached"]["img"]["train"]["built"] is False
    assert run_info(tmp_path, "plain")["feature_cache"]["cached"] == {}
    reference = losses(tmp_path, "plain")
    want = load_tensors(tmp_path / "plain" / "model" / "model.safetensors")
    for name in ("built", "read"):
        train_losses, eval_losses = losses(tmp_path, name)
        assert train_losses == pytest.approx(reference[0], abs=1e-6)
        assert eval_losses == pytest.approx(reference[1], abs=1e-6)
        assert max_abs_diff(load_tensors(tmp_path / name / "model" / "model.safetensors"), want) <= 1e-6



def cache_info(tmp_path, name):
    return run_info(tmp_path, name)["feature_cache"]


def fixed_spec(**params):
    return {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "vec": {"type": "toy-vec-fixed", **params}}}


@pytest.mark.parametrize(
    ("params", "freeze", "reason"),
    [
        ({"dropout": 0.5}, [], "stay in training mode"),
        ({}, [], "stay in training mode"),
        ({"cacheable": False}, ["encoders.vec"], "may not be cached (output_cacheable = False)"),
        ({"center": True}, ["encoders.vec"], "depends on the other examples of its batch"),
        ({"cacheable": True, "dropout": 0.5}, [], "its forward draws random numbers"),
        ({"cacheable": "yes"}, ["encoders.vec"], "a plugin sets it to True, False or None"),
    ],
)
def test_an_encoder_whose_output_is_not_fixed_is_not_cached(toys, tmp_path, feature_root, capsys, params, freeze,
                                                           reason):
    run(tmp_path, "run", model=fixed_spec(**params), optim__freeze=freeze, optim__steps=2)
    info = cache_info(tmp_path, "run")
    assert reason in info["not_cached"]["vec"] and "vec" not in info["cached"]
    assert capsys.readouterr().err.count(reason) == 1  # said once
    with pytest.raises(ConfigError, match="data.cache_features: true, but encoders.vec: .*" + reason.split(" (")[0]):
        run(tmp_path, "strict", model=fixed_spec(**params), optim__freeze=freeze, optim__steps=2,
            data__cache_features=True)


def test_an_encoder_stating_its_output_is_fixed_is_cached_in_training_mode(toys, tmp_path, feature_root):
    """Built without trainable parameters but not in optim.freeze, it stays in training mode; its
    statement (output_cacheable = True) lets the cache take it, and the run equals the uncached one."""
    spec = fixed_spec(cacheable=True)
    run(tmp_path, "plain", model=spec, optim__steps=6, data__cache_features=False)
    run(tmp_path, "cached", model=spec, optim__steps=6)
    assert cache_info(tmp_path, "cached")["cached"]["vec"]["train"]["built"] is True
    (train_cached, eval_cached), (train_plain, eval_plain) = losses(tmp_path, "cached"), losses(tmp_path, "plain")
    assert train_cached == pytest.approx(train_plain, abs=1e-6) and eval_cached == pytest.approx(eval_plain, abs=1e-6)


def test_random_preprocessing_is_not_cached(toys, tmp_path, feature_root):
    spec = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "vec": {"type": "toy-vec-jitter"}}}
    run(tmp_path, "run", model=spec, optim__freeze=["encoders.vec"], optim__steps=2)
    assert cache_info(tmp_path, "run")["not_cached"]["vec"] == "its preprocess draws random numbers (augmentation?)"


def test_nothing_frozen_says_so_once_and_true_refuses(toys, tmp_path, feature_root, capsys):
    run(tmp_path, "run", optim__steps=2)
    assert capsys.readouterr().err.count("feature cache: off (no encoder is frozen)") == 1
    with pytest.raises(ConfigError, match=r"data.cache_features: true, but no encoder is frozen"):
        run(tmp_path, "strict", optim__steps=2, data__cache_features=True)
    run(tmp_path, "off", optim__steps=2, data__cache_features=False)
    assert "feature cache" not in capsys.readouterr().err


def test_every_component_of_the_key_makes_a_miss(toys, tmp_path, feature_root, monkeypatch):
    """The frozen image encoder's train entry is built again whenever its spec, its weights, the data
    (dataset parameters, split, max_examples, content), the precision or mmzoo's version change, and
    read back when nothing did."""
    import mmzoo

    base = {"optim__freeze": ["encoders.img"], "optim__steps": 2, "data__eval": None}
    changes = {
        "same": {},
        "spec": {"model": {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "img": {
            **TINY_SPEC["encoders"]["img"], "channels": [6]}}}},
        "weights": {"seed": 1},
        "dataset params": {"data__train": {"dataset": "toy-blobs", "params": {"size": 48, "noise": 0.5}}},
        "split": {"data__train": {"dataset": "toy-blobs", "split": "test", "params": {"size": 48}}},
        "max_examples": {"data__train": {"dataset": "toy-blobs", "params": {"size": 48}, "max_examples": 40}},
        "precision": {"precision": "bf16"},
    }
    run(tmp_path, "first", **base)
    built = {}
    for label, change in changes.items():
        run(tmp_path, label.replace(" ", "-"), **{**base, **change})
        built[label] = cache_info(tmp_path, label.replace(" ", "-"))["cached"]["img"]["train"]["built"]
    # the same config, with the dataset's content changed (an example's image) and with another mmzoo version
    data_module = __import__("mmzoo_train_toys_data")
    original = data_module.ToyBlobs.__getitem__

    def changed_content(self, index):
        item = original(self, index)
        return {**item, "img": item["img"] + (index == 7)}

    monkeypatch.setattr(data_module.ToyBlobs, "__getitem__", changed_content)
    run(tmp_path, "content", **base)
    built["content"] = cache_info(tmp_path, "content")["cached"]["img"]["train"]["built"]
    monkeypatch.setattr(data_module.ToyBlobs, "__getitem__", original)
    monkeypatch.setattr(mmzoo, "__version__", "999.0")
    run(tmp_path, "version", **base)
    built["mmzoo version"] = cache_info(tmp_path, "version")["cached"]["img"]["train"]["built"]
    assert built == {label: label != "same" for label in built}
