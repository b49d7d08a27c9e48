"""``mmzoo sweep``: validation with located messages, failure isolation (a failing point, a worker that
dies), skipping finished points on a re-run, and the results files."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from mmzoo.errors import ConfigError
from mmzoo.sweep.config import load_sweep
from tests.support import run_cli, write_distribution

BASE = {
    "model": {
        "encoders": {
            "image": {"type": "cnn", "in_channels": 1, "image_size": 8, "channels": [4], "output_dim": 8},
            "vector": {"type": "mlp", "in_dim": 64, "hidden_dims": [8], "output_dim": 8},
        },
        "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 10},
    },
    "data": {"train": {"dataset": "sklearn-digits", "max_examples": 64},
             "eval": {"dataset": "sklearn-digits", "split": "test", "max_examples": 32}, "batch_size": 16},
    "optim": {"name": "adamw", "lr": 0.01, "steps": 3, "freeze": ["encoders.image"]},
    "best_metric": "accuracy",
}

# A plugin whose encoder ends its process in preprocess, as a segfault or an out-of-memory kill would.
CRASH = {
    "crash_plugin": """
        import mmzoo

        @mmzoo.hookimpl
        def mmzoo_register_components(registry):
            registry.add_encoder("crash-vec", "crash_plugin_parts:CrashEncoder", modality="vector")
    """,
    "crash_plugin_parts": """
        import os

        import torch
        from torch import nn

        class CrashEncoder(nn.Module):
            def __init__(self, in_dim=64, output_dim=8):
                super().__init__()
                self.output_dim = output_dim
                self.net = nn.Linear(in_dim, output_dim)

            def preprocess(self, examples):
                os._exit(3)

            def forward(self, x):
                return self.net(x)
    """,
}


def write_sweep(tmp_path, grid, **extra):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    sweep = {"base": "run.yaml", "grid": grid, "output_dir": str(tmp_path / "out"), **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def sweep_cli(tmp_path, path, *args, site=None):
    env = {"MMZOO_FEATURE_CACHE": str(tmp_path / "features"), "OMP_NUM_THREADS": "1"}
    return run_cli("sweep", str(path), *args, env=env, pythonpath=[site] if site else [], cwd=tmp_path, timeout=900)


def write_raw(tmp_path, raw):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def problems_of(path):
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message


def test_mistakes_are_reported_at_once_and_located(tmp_path):
    write_sweep(tmp_path, {})
    message = problems_of(write_raw(tmp_path, {
        "base": "run.yaml", "grid": {"seed": [0]}, "outptu_dir": "x", "average_over": ["seed", "sead"]}))
    assert "outptu_dir: unknown key. Did you mean 'output_dir'?" in message
    assert "output_dir: required" in message
    message = problems_of(write_raw(tmp_path, {
        "base": "run.yaml", "grid": {"seed": [0]}, "output_dir": "out", "average_over": ["seed", "sead"]}))
    assert "average_over: 'sead' is not a grid key (grid keys: seed)" in message
    # every point's run config is checked like run.yaml, each problem with the point it belongs to
    message = problems_of(write_raw(tmp_path, {
        "base": "run.yaml", "grid": {"optim.lr": ["fast", 0.1], "optim.warmup": [1]}, "output_dir": "out"}))
    assert "3 problems:" in message
    assert "point optim.lr=fast,optim.warmup=1: optim.lr: expected float > 0, got 'fast'" in message
    assert "point optim.lr=fast,optim.warmup=1: optim.warmup: unknown key. Did you mean 'warmup_steps'?" in message
    assert "point optim.lr=0.1,optim.warmup=1: optim.warmup: unknown key." in message
    for bad, expected in [
        ({"grid": {"seed": []}}, "grid.seed: expected a non-empty list of values, got a list"),
        ({"grid": {"seed": 3}}, "grid.seed: expected a non-empty list of values, got 3"),
        ({"grid": {"model..x": [1]}}, "grid.model..x: expected a dotted run-config key"),
        ({"base": "missing*.yaml"}, "base: 'missing*.yaml' matches no file"),
        ({"base": "nothere.yaml"}, "nothere.yaml: config file not found"),
        ({"base": 3}, "base: expected a string or a list of strings or a mapping, got 3"),
    ]:
        message = problems_of(write_raw(tmp_path, {"base": "run.yaml", "output_dir": "out", **bad}))
        assert expected in message, (bad, message)


def test_the_cli_prints_one_line_for_a_mistake(tmp_path):
    path = write_sweep(tmp_path, {"optim.lr": ["fast"]})
    done = sweep_cli(tmp_path, path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "optim.lr: expected float > 0, got 'fast'" in done.stderr


@pytest.mark.slow
def test_failures_are_isolated_finished_points_are_skipped_and_results_written(tmp_path):
    site = write_distribution(tmp_path / "site", "crash-plugin", CRASH, {"crash": "crash_plugin"})
    mlp = BASE["model"]["encoders"]["vector"]
    grid = {"model.encoders.vector": [mlp, {"type": "crash-vec"}, {"type": "nosuch-encoder"}], "seed": [0, 1]}
    path = write_sweep(tmp_path, grid)
    first = sweep_cli(tmp_path, path, "--parallel", "2", site=site)
    assert first.returncode == 1, first.stderr
    assert "6 points, 0 already finished, 6 to run (2 at a time)" in first.stdout
    out = tmp_path / "out"
    statuses = {p.stem: json.loads(p.read_text()) for p in (out / "points").glob("*.json")}
    assert {name: s["status"] for name, s in statuses.items()} == {
        "vector=mlp,seed=0": "done", "vector=mlp,seed=1": "done",
        "vector=crash-vec,seed=0": "failed", "vector=crash-vec,seed=1": "failed",
        "vector=nosuch-encoder,seed=0": "failed", "vector=nosuch-encoder,seed=1": "failed",
    }
    assert "the worker process died (exit code 3)" in statuses["vector=crash-vec,seed=0"]["error"]
    assert "unknown encoder 'nosuch-encoder'" in statuses["vector=nosuch-encoder,seed=1"]["error"]
    done = statuses["vector=mlp,seed=0"]
    assert done["parameters"] > done["trainable_parameters"] > 0 and 0 <= done["metrics"]["accuracy"] <= 1
    assert (out / "runs" / "vector=mlp,seed=1" / "model" / "config.json").is_file()
    # the points share the frozen image encoder's features: one entry per split and seed (the seed
    # initialises the encoder's weights), built by the first point that needed it
    assert len([p for p in (tmp_path / "features").iterdir() if p.is_dir()]) == 4

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    by_name = {row["composition"]: row for row in rows}
    assert set(by_name) == {"vector=mlp", "vector=crash-vec", "vector=nosuch-encoder"}
    row = by_name["vector=mlp"]
    accuracies = [statuses[f"vector=mlp,seed={s}"]["metrics"]["accuracy"] for s in (0, 1)]
    assert float(row["accuracy_mean"]) == pytest.approx(sum(accuracies) / 2, abs=1e-5)
    assert row["runs"] == "2" and row["failed"] == "0" and by_name["vector=crash-vec"]["failed"] == "2"
    markdown = (out / "results.md").read_text()
    assert "| **vector=mlp** | " in markdown and " ± " in markdown
    assert "- `vector=crash-vec,seed=0`: failed: the worker process died (exit code 3)" in markdown
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    model = out / "runs" / "vector=mlp,seed=0" / "model" / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    again = sweep_cli(tmp_path, path, site=site)
    assert "6 points, 2 already finished, 4 to run" in again.stdout
    assert model.stat().st_mtime_ns == stamp  # a finished point is not trained again

    changed = {**BASE, "optim": {**BASE["optim"], "lr": 0.02}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(changed))
    refused = sweep_cli(tmp_path, path, site=site)
    assert refused.returncode == 2 and "ran with another config than they have now" in refused.stderr


def test_a_points_identity_is_its_config_as_written(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, {"seed": [0, 1]})
    digests = {p.name: p.digest() for p in load_sweep(path).points}
    assert len(set(digests.values())) == 2
    assert {p.name: p.digest() for p in load_sweep(path).points} == digests
    changed = {p.name: p.digest() for p in load_sweep(path, overrides=["optim.lr=0.02"]).points}
    assert not set(changed.values()) & set(digests.values())
    # a newer mmzoo whose resolved configs carry one more key (with its default) keeps finished points
    from mmzoo.train.config import TrainConfig

    resolved = TrainConfig.to_dict
    monkeypatch.setattr(TrainConfig, "to_dict", lambda self: {**resolved(self), "a_new_key": "its default"})
    assert {p.name: p.digest() for p in load_sweep(path).points} == digests
