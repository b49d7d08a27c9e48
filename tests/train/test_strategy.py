"""Training strategies in one process: single, and ddp on a process group of one; what hooks see."""

from __future__ import annotations

import json
import os
import signal

import pytest

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.rundir import RunDir
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, run_cli, toy_config, write_yaml


def run(tmp_path, name, hooks=(), **changes):
    return train(validate_config(toy_config(tmp_path / name, **changes)), hooks=hooks)


def weights(tmp_path, name):
    return load_tensors(tmp_path / name / "model" / "model.safetensors")


def test_ddp_on_one_rank_trains_like_one_process_and_resumes_as_single(toys, tmp_path):
    """strategy: ddp in a world of one wraps the model in DDP over a process group of one; it learns
    what the single strategy learns, records itself, and its checkpoint resumes under strategy single."""
    views = []

    def record(view):
        views.append((view.strategy, view.wrapper, view.compiled, view.eval_compiled, view.world_size))
        if view.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # honoured after the next step

    run(tmp_path, "single", optim__steps=6)
    stopped = run(tmp_path, "ddp", hooks=[record], strategy="ddp", optim__steps=6)
    assert not stopped.completed and stopped.step == 3
    assert views[0] == ("ddp", "DistributedDataParallel", False, False, 1)
    run_dir = RunDir(tmp_path / "ddp")
    info = run_dir.run_info()
    assert (info["strategy"], info["backend"], info["world_size"]) == ("ddp", "gloo", 1)
    checkpoint = json.loads((run_dir.latest_checkpoint() / "checkpoint.json").read_text())
    assert (checkpoint["strategy"], checkpoint["step"]) == ("ddp", 3)

    resumed = run(tmp_path, "ddp", strategy="single", resume="auto", optim__steps=6)
    assert resumed.completed and RunDir(tmp_path / "ddp").run_info()["strategy"] == "single"
    assert max_abs_diff(weights(tmp_path, "single"), weights(tmp_path, "ddp")) < 1e-6


def test_hooks_see_a_documented_view_not_the_trainer(toys, tmp_path):
    seen = []
    run(tmp_path, "run", hooks=[seen.append], optim__steps=2, eval_every=1)
    view = seen[-1]
    assert (view.step, view.total_steps, view.epoch, view.steps_per_epoch) == (2, 2, 0, 6)
    assert (view.rank, view.world_size, view.is_main, view.strategy) == (0, 1, True, "single")
    assert (view.wrapper, view.compiled, view.eval_compiled) == (None, False, False)
    assert view.run_dir == tmp_path / "run" and view.config.optim.steps == 2
    assert set(view.last_eval) == {"loss", "accuracy"}
    assert view.model.encoders["vec"].training and view.optimizer.param_groups
    with pytest.raises(AttributeError, match="TrainerView has no attribute 'forward_module'; hooks see step"):
        view.forward_module  # noqa: B018


def test_a_head_is_told_the_distributed_context_and_one_without_the_method_still_trains(toys, tmp_path):
    """The strategy binds the head's context before training (world size 1 here) and unbinds it at
    the end; the builtin classification head has no bind_distributed and trains as before."""
    spec = {**TINY_SPEC, "head": {"type": "toy-global-cls"}}
    heads = []
    result = run(tmp_path, "bound", hooks=[lambda view: heads.append(view.model.head)], model=spec, optim__steps=2)
    assert result.metrics["bound_world_size"] == 1.0  # evaluated while the context was bound
    assert heads[0].context is None  # unbound once training ended
    from mmzoo.parts.heads import ClassificationHead

    assert not hasattr(ClassificationHead, "bind_distributed")
    assert run(tmp_path, "plain", optim__steps=2).completed


def test_single_is_refused_for_several_ranks_before_any_rank_starts(toy_site, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run", strategy="single"))
    result = run_cli(["train", str(config), "--nproc", "2"], toy_site, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "strategy: 'single' trains in one process, but this job has 2 ranks" in result.stderr
    assert not (tmp_path / "run").exists()


def test_strategy_mistakes_are_located():
    raw = toy_config("o", strategy="deepspeed")
    with pytest.raises(ConfigError, match="strategy: expected one of 'auto', 'single', 'ddp', 'fsdp', got 'deepspeed'"):
        validate_config(raw)
