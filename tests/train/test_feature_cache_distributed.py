"""The feature cache under DDP: two gloo ranks (one builds each entry, the other waits on its lock), with
DataLoader workers, give the same run as the uncached one."""

from __future__ import annotations

import json

import pytest

from mmzoo.train.metrics import read_metrics
from tests.train.helpers import load_tensors, max_abs_diff, run_cli, toy_config, write_yaml

pytestmark = pytest.mark.distributed


def train_two_ranks(tmp_path, site, name, features, **changes):
    config = write_yaml(tmp_path / f"{name}.yaml", toy_config(tmp_path / name, **changes))
    return run_cli(["train", str(config), "--nproc", "2"], site, tmp_path, MMZOO_FEATURE_CACHE=str(features))


@pytest.mark.parametrize("workers", [0, 2])
def test_two_ranks_cached_equal_two_ranks_uncached(toy_site, tmp_path, workers):
    features = tmp_path / "features"
    common = {"optim__freeze": ["encoders.img"], "optim__steps": 8, "eval_every": 4, "data__num_workers": workers,
              "data__batch_size": 4}
    plain = train_two_ranks(tmp_path, toy_site, "plain", features, data__cache_features=False, **common)
    cached = train_two_ranks(tmp_path, toy_site, "cached", features, data__cache_features=True, **common)
    again = train_two_ranks(tmp_path, toy_site, "again", features, data__cache_features=True, **common)
    for result in (plain, cached, again):
        assert result.returncode == 0, result.stderr
    # whichever rank took an entry's lock first built it, the other read it: one entry per split
    assert len([p for p in features.iterdir() if p.is_dir()]) == 2
    info = json.loads((tmp_path / "cached" / "run.json").read_text())
    assert info["world_size"] == 2 and set(info["feature_cache"]["cached"]["img"]) == {"train", "eval"}
    assert "reads data.train (48 examples), data.eval (20 examples) from the cache" in again.stderr
    want = load_tensors(tmp_path / "plain" / "model" / "model.safetensors")
    reference = [r.get("loss", r.get("eval_loss")) for r in read_metrics(tmp_path / "plain" / "metrics.jsonl")]
    for name in ("cached", "again"):
        assert max_abs_diff(load_tensors(tmp_path / name / "model" / "model.safetensors"), want) <= 1e-6
        got = [r.get("loss", r.get("eval_loss")) for r in read_metrics(tmp_path / name / "metrics.jsonl")]
        assert got == pytest.approx(reference, abs=1e-6)
