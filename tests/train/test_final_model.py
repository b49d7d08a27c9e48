"""``final_model: last | best``: which step RUN_DIR/model/ holds, and config.json saying so."""

from __future__ import annotations

import json

import pytest
import torch

import mmzoo
from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.metrics import read_metrics
from mmzoo.train.trainer import train
from tests.train.helpers import load_tensors, toy_config


def evals(run_dir) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("split") == "eval"}


def test_final_model_best_saves_the_best_checkpoint_and_says_which_step(toys, tmp_path):
    # "best" here is the highest eval loss: an early step, so it differs from the last one
    config = validate_config(toy_config(tmp_path / "run", optim__steps=8, eval_every=2, best_metric="loss",
                                        best_mode="max", final_model="best"))
    result = train(config)
    run_dir = tmp_path / "run"
    logged = evals(run_dir)
    best_step = max(logged, key=lambda step: logged[step]["eval_loss"])
    assert best_step != 8 and result.step == 8

    saved = json.loads((run_dir / "model" / "config.json").read_text())
    assert saved["training"]["steps"] == best_step and saved["training"]["run_steps"] == 8
    assert saved["training"]["checkpoint"] == "best"
    assert (saved["training"]["best_metric"], saved["training"]["best_mode"]) == ("loss", "max")
    assert saved["metrics"]["loss"] == pytest.approx(logged[best_step]["eval_loss"])
    assert saved["metrics"]["accuracy"] == pytest.approx(logged[best_step]["eval_accuracy"])

    model = mmzoo.create_model(str(run_dir / "model"))
    best = load_tensors(run_dir / "checkpoints" / f"step-{best_step:06d}" / "model.safetensors")
    last = load_tensors(run_dir / "checkpoints" / "step-000008" / "model.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in best.items())
    assert not all(torch.equal(state[k], v) for k, v in last.items())
    final = read_metrics(run_dir / "metrics.jsonl")[-1]
    assert final["split"] == "final" and final["step"] == 8 and final["model_step"] == best_step
    assert final["eval_loss"] == pytest.approx(logged[best_step]["eval_loss"])


def test_final_model_last_is_the_default_and_is_recorded(toys, tmp_path):
    config = validate_config(toy_config(tmp_path / "run", optim__steps=4, eval_every=2))
    assert config.final_model == "last"
    train(config)
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["training"]["checkpoint"] == "last"
    assert saved["training"]["steps"] == saved["training"]["run_steps"] == 4
    assert "best_metric" not in saved["training"]
    assert saved["metrics"]["loss"] == pytest.approx(evals(tmp_path / "run")[4]["eval_loss"])


def test_final_model_best_without_eval_data_is_refused(tmp_path):
    raw = toy_config(tmp_path / "run", final_model="best")
    del raw["data"]["eval"]
    with pytest.raises(ConfigError, match="final_model: 'best' picks the step with the best eval loss, but there "
                                          "is no data.eval"):
        validate_config(raw)
    with pytest.raises(ConfigError, match="final_model: expected one of 'last', 'best'"):
        validate_config(toy_config(tmp_path / "run", final_model="first"))


def test_final_model_best_falls_back_to_last_when_no_eval_has_the_metric(toys, tmp_path, capsys):
    config = validate_config(toy_config(tmp_path / "run", optim__steps=2, best_metric="f1", final_model="best"))
    train(config)
    assert "final_model is 'best', but no evaluation reported best_metric 'f1'" in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["training"]["checkpoint"] == "last" and saved["training"]["steps"] == 2
