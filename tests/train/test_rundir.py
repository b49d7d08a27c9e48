"""RunDir: one place for a run directory's file names and for reading what a run wrote."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.rundir import RunDir
from mmzoo.train.trainer import train
from tests.train.helpers import REPO, toy_config


@pytest.fixture
def finished(toys, tmp_path):
    """A run that evaluated every step and kept the last checkpoint plus the best one."""
    config = toy_config(tmp_path / "run", optim__steps=6, eval_every=1, keep_last=1, best_metric="loss",
                        optim__lr=0.5, optim__momentum=0.0)
    result = train(validate_config(config))
    return RunDir(tmp_path / "run"), result


def test_a_finished_run_reads_back(finished):
    run, result = finished
    config = run.config()
    assert config.optim.steps == 6 and config.source == str(run.config_file)
    assert run.data_config() == config.data
    assert run.run_info()["world_size"] == 1 and run.run_info()["strategy"] == "single"
    records = run.metrics()
    assert records[-1]["split"] == "final" and [r["step"] for r in records if "loss" in r][:2] == [1, 2]
    assert run.final_model() == run.model_dir and (run.model_dir / "model.safetensors").is_file()
    assert run.is_run() and run.is_occupied() and run.curves_file.is_file()


def test_checkpoints_by_last_best_and_step(finished):
    run, result = finished
    evals = [r for r in run.metrics() if r.get("split") == "eval"]
    best_step = min(evals, key=lambda r: r["eval_loss"])["step"]
    steps = [step for step, _ in run.checkpoints()]
    assert steps == sorted({best_step, 6})
    assert run.checkpoint("last") == run.checkpoint("latest") == run.latest_checkpoint() == result.checkpoint
    assert run.checkpoint("best") == run.best_checkpoint() == run.checkpoints_dir / f"step-{best_step:06d}"
    assert run.checkpoint(6) == run.checkpoint("step-6") == run.checkpoint("step-000006") == result.checkpoint
    with pytest.raises(ConfigError, match=r"no checkpoint at step 4; the run has steps"):
        run.checkpoint("step-4")
    with pytest.raises(ConfigError, match="expected 'last', 'best', 'step-N' or a step number"):
        run.checkpoint("newest")


def test_a_run_without_a_best_or_any_checkpoint_says_so(toys, tmp_path):
    train(validate_config(toy_config(tmp_path / "run", optim__steps=2, best_metric="nothing")))
    run = RunDir(tmp_path / "run")
    assert run.best_checkpoint() is None
    with pytest.raises(ConfigError, match="no best checkpoint is recorded"):
        run.checkpoint("best")
    empty = RunDir(tmp_path / "empty")
    assert empty.checkpoints() == [] and empty.latest_checkpoint() is None and empty.final_model() is None
    assert empty.metrics() == [] and not empty.is_run()
    with pytest.raises(ConfigError, match=r"the run has no checkpoints"):
        empty.checkpoint("last")
    with pytest.raises(ConfigError, match=r"empty: not a run directory \(no config.yaml\)"):
        empty.config()


def test_a_stale_key_outside_data_does_not_stop_evaluation_but_a_bad_data_section_is_located(finished):
    """mmzoo eval reads the run's evaluation data through the validated data section: a key elsewhere
    that a later schema dropped is ignored, a mistake in data is reported where it is."""
    run, _ = finished
    raw = yaml.safe_load(run.config_file.read_text())
    raw["retired_key"] = True
    run.config_file.write_text(yaml.safe_dump(raw))
    assert run.data_config().eval.dataset == "toy-blobs"
    with pytest.raises(ConfigError, match="retired_key: unknown key"):
        run.config()
    raw["data"]["eval"]["splt"] = "val"
    run.config_file.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"config.yaml: data.eval.splt: unknown key. Did you mean 'split'\?"):
        run.data_config()


def test_reading_a_run_does_not_import_torch():
    code = (
        "import sys\nfrom mmzoo.train.rundir import RunDir\n"
        "run = RunDir('.'); run.checkpoints(); run.metrics(); run.is_run()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_evaluation_needs_nothing_from_the_trainer():
    code = (
        "import sys\nimport mmzoo.train.evaluate\n"
        "assert 'mmzoo.train.trainer' not in sys.modules, 'evaluate imported the trainer'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
