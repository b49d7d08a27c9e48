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

