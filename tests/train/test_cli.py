"""`mmzoo train` and `mmzoo eval` as a user runs them: messages, overrides, signals, evaluation."""

from __future__ import annotations

import json
import signal
import time

import pytest

from mmzoo.train import checkpoint as ckpt
from mmzoo.train.metrics import read_metrics
from tests.train.helpers import (
    TINY_SPEC,
    load_tensors,
    max_abs_diff,
    popen_cli,
    run_cli,
    run_cli_on_a_terminal,
    toy_config,
    write_yaml,
)


def test_a_bad_config_is_one_line_without_traceback(toy_site, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run", optim__lr="fast", optim__stesp=3))
    result = run_cli(["train", str(config)], toy_site, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {config}: 2 problems:\n")
    assert "optim.stesp: unknown key. Did you mean 'steps'?" in result.stderr
    assert "optim.lr: expected float > 0, got 'fast'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_set_overrides_and_eval_of_the_run(toy_site, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run"))
    result = run_cli(
        ["train", str(config), "--set", "optim.steps=3", "--set", "optim.lr=1e-2"], toy_site, tmp_path
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("step ") and " eval:" not in line]
    assert [line.split()[1] for line in progress] == ["1/3", "2/3", "3/3"]  # log_every: 1, a log: no bar
    assert all("loss" in line and "samples/s" in line for line in progress) and "\r" not in result.stderr
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    assert "steps: 3" in resolved and "lr: 0.01" in resolved
    assert json.loads((tmp_path / "run" / "run.json").read_text())["malloc_tuned"] is True  # glibc here
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())

    evaluated = run_cli(["eval", str(tmp_path / "run"), "--json"], toy_site, tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["dataset"] == "toy-blobs" and report["split"] == "test" and report["num_examples"] == 20
    assert report["metrics"]["accuracy"] == pytest.approx(saved["metrics"]["accuracy"])
    assert report["metrics"]["loss"] == pytest.approx(saved["metrics"]["loss"], abs=1e-6)
    assert "eval:" not in evaluated.stderr and "\r" not in evaluated.stderr  # no progress bar in a log
    status, stdout, terminal = run_cli_on_a_terminal(["eval", str(tmp_path / "run"), "--json"], toy_site, tmp_path)
    assert status == 0 and json.loads(stdout)["metrics"] == report["metrics"]
    assert "eval:" in terminal and "batch" in terminal  # a bar on a terminal

    other = run_cli(
        [
            "eval",
            str(tmp_path / "run" / "checkpoints" / "step-000003"),
            "--data",
            "toy-blobs",
            "--param",
            "size=9",
            "--batch-size",
            "4",
        ],
        toy_site,
        tmp_path,
    )
    assert other.returncode == 0, other.stderr
    assert "toy-blobs, split test (9 examples)" in other.stdout and "accuracy" in other.stdout

    without = run_cli(["eval", str(tmp_path / "run"), "--missing", "img", "--json"], toy_site, tmp_path)
    assert without.returncode == 0, without.stderr  # concat fuses the learned absent embedding instead
    report = json.loads(without.stdout)
    assert report["missing"] == ["img"] and report["num_examples"] == 20
    assert report["metrics"]["loss"] != pytest.approx(saved["metrics"]["loss"], abs=1e-6)
    typo = run_cli(["eval", str(tmp_path / "run"), "--missing", "image"], toy_site, tmp_path)
    assert typo.returncode == 2 and "--missing image: the model has no input 'image'" in typo.stderr
    assert "Did you mean 'img'?" in typo.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "nowhere-model"], "nowhere-model"),
        (["eval", "RUN", "--data", "toy-blobz"], "Did you mean 'toy-blobs'?"),
        (["eval", "RUN", "--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
        (["eval", "RUN"], "--data: required (a registered dataset name"),
        (["train", "missing.yaml"], "missing.yaml: config file not found"),
        (["train", "RUN.yaml", "--set", "optim.lr"], "--set 'optim.lr': expected KEY=VALUE"),
        (["train", "RUN.yaml", "--nproc", "0"], "--nproc: expected an integer >= 1, got 0"),
    ],
)
def test_cli_mistakes(toy_site, tmp_path, args, message):
    import mmzoo

    write_yaml(tmp_path / "RUN.yaml", toy_config(tmp_path / "fresh"))
    mmzoo.create_model(TINY_SPEC).save_pretrained(tmp_path / "RUN" / "model")  # a run without config.yaml
    result = run_cli(args, toy_site, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr


def test_torchrun_environment_of_one_rank_and_nproc_inside_torchrun(toy_site, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run", optim__steps=2))
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "x"}
    nested = run_cli(["train", str(config), "--nproc", "2"], toy_site, tmp_path, **env)
    assert nested.returncode == 2 and "already started by torchrun" in nested.stderr
    single = run_cli(["train", str(config)], toy_site, tmp_path, **env)
    assert single.returncode == 0, single.stderr


@pytest.mark.slow
def test_sigterm_from_outside_then_resume_auto_is_exact(toy_site, tmp_path):
    changes = {
        "optim__steps": 40,
        "save_every": 100,
        "data__num_workers": 1,
        "data__train": {"dataset": "toy-blobs", "params": {"size": 48, "delay": 0.005}},
        "model__head": {"type": "classification", "num_classes": 3, "dropout": 0.2},
    }
    whole = run_cli(
        ["train", str(write_yaml(tmp_path / "whole.yaml", toy_config(tmp_path / "whole", **changes)))],
        toy_site,
        tmp_path,
    )
    assert whole.returncode == 0, whole.stderr

    config = write_yaml(tmp_path / "parted.yaml", toy_config(tmp_path / "parted", **changes))
    proc = popen_cli(["train", str(config)], toy_site, tmp_path)
    metrics = tmp_path / "parted" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and any(r.get("step", 0) >= 3 for r in read_metrics(metrics)):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM after step" in stderr and "Traceback" not in stderr
    step = ckpt.CheckpointManager(tmp_path / "parted" / "checkpoints", 9).steps()[-1][0]
    assert step < 40

    resumed = run_cli(["train", str(config), "--set", "resume=auto"], toy_site, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = load_tensors(tmp_path / "whole" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "parted" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) == 0.0
