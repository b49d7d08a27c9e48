"""Publishing what a run learned: `push --checkpoint`, final_model best, the training files beside the model,
and nothing private (tokens, home paths) reaching the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import HfApi

import mmzoo
from mmzoo.errors import ConfigError, HubError
from mmzoo.hub import push_to_hub, sha256_of
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import TOKEN, train_digits_run

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """One real training run (8 steps, checkpoints at 4 (the best) and 8) shared by the tests here."""
    return train_digits_run(tmp_path_factory.mktemp("runs") / "digits")


def checkpoint_file(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}" / "model.safetensors"


def evals(run: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in records if r.get("split") == "eval"}


def hub_text(repo_id: str, filename: str, revision: str | None = None) -> str:
    return Path(HfApi().hf_hub_download(repo_id, filename, revision=revision)).read_text()


def test_push_checkpoint_best_uploads_that_steps_weights_and_metrics(hub: HubServer, digits_run: Path, fresh_python):
    best = json.loads((digits_run / "checkpoints" / "step-000008" / "checkpoint.json").read_text())["best"]
    assert best["step"] == 4  # the run's best is not its last step
    proc = fresh_python("-m", "mmzoo", "push", str(digits_run), "org/digits-best", "--checkpoint", "best", "--json",
                        env=hub.env)
    result = json.loads(proc.stdout)
    assert result["sha256"] == sha256_of(checkpoint_file(digits_run, 4)) != sha256_of(checkpoint_file(digits_run, 8))
    files = hub.repo("org/digits-best").resolve(result["revision"]).files
    assert files["model.safetensors"].etag == sha256_of(checkpoint_file(digits_run, 4))

    config = json.loads(hub_text("org/digits-best", "config.json"))
    assert config["training"]["steps"] == 4 and config["training"]["run_steps"] == 8
    assert config["training"]["checkpoint"] == "best" and config["training"]["best_metric"] == "loss"
    assert config["metrics"]["accuracy"] == pytest.approx(evals(digits_run)[4]["eval_accuracy"])
    assert config["spec"] == json.loads((digits_run / "model" / "config.json").read_text())["spec"]
    readme = hub_text("org/digits-best", "README.md")
    assert "Evaluation of the best step (sklearn-digits, split `test`) at step 4" in readme
    assert "- weights: step 4 of 8, the highest eval `loss`" in readme

    published = mmzoo.create_model("hf-hub:org/digits-best")
    from safetensors.torch import load_file

    expected = load_file(checkpoint_file(digits_run, 4))
    assert all(torch.equal(published.state_dict()[k], v) for k, v in expected.items())


def test_push_checkpoint_last_and_step_n(hub: HubServer, digits_run: Path):
    last = push_to_hub(digits_run, "org/digits-steps", checkpoint="last")
    assert last.sha256 == sha256_of(checkpoint_file(digits_run, 8))
    assert json.loads(hub_text("org/digits-steps", "config.json", last.revision))["training"]["checkpoint"] == "last"
    step = push_to_hub(digits_run, "org/digits-steps", checkpoint="step-4")
    config = json.loads(hub_text("org/digits-steps", "config.json", step.revision))
    assert step.sha256 == sha256_of(checkpoint_file(digits_run, 4))
    assert config["training"]["checkpoint"] == "step-4" and config["training"]["steps"] == 4
    with pytest.raises(ConfigError, match=r"no checkpoint at step 6; the run has steps 4, 8"):
        push_to_hub(digits_run, "org/digits-steps", checkpoint="step-6")
    with pytest.raises(HubError, match="--checkpoint best needs a training run directory"):
        mmzoo.create_model(digits_run / "model").save_pretrained(digits_run.parent / "copy")
        push_to_hub(digits_run.parent / "copy", "org/digits-steps", checkpoint="best")


def test_a_run_without_model_dir_publishes_a_checkpoint(hub: HubServer, digits_run: Path, tmp_path: Path):
    import shutil

    stopped = tmp_path / "stopped"
    shutil.copytree(digits_run, stopped, ignore=shutil.ignore_patterns("model"))
    with pytest.raises(HubError, match="without model/ .*--checkpoint last, best or step-N"):
        push_to_hub(stopped, "org/stopped")
    result = push_to_hub(stopped, "org/stopped", checkpoint="last")
    config = json.loads(hub_text("org/stopped", "config.json", result.revision))
    assert config["spec"]["head"] == {"type": "classification", "num_classes": 10}
    assert config["datasets"] == ["sklearn-digits"] and config["training"]["steps"] == 8
    assert config["labels"] == [str(d) for d in range(10)]  # the class names the checkpoint kept
    assert mmzoo.create_model("hf-hub:org/stopped").load_report is not None


def test_final_model_best_run_pushes_its_best_step(hub: HubServer, tmp_path: Path):
    run = train_digits_run(tmp_path / "best", final_model="best")
    result = push_to_hub(run, "org/final-best")
    config = json.loads(hub_text("org/final-best", "config.json", result.revision))
    assert config["training"]["checkpoint"] == "best" and config["training"]["steps"] == 4
    readme = hub_text("org/final-best", "README.md", result.revision)
    assert "at step 4" in readme and "step 4 of 8" in readme


def test_training_config_and_metrics_log_travel_with_the_model(hub: HubServer, digits_run: Path):
    result = push_to_hub(digits_run, "org/with-record")
    assert {"training/config.yaml", "training/metrics.jsonl", "curves.png"} <= set(result.files)
    config = yaml.safe_load(hub_text("org/with-record", "training/config.yaml"))
    assert config["optim"]["steps"] == 8 and config["data"]["train"]["dataset"] == "sklearn-digits"
    log = [json.loads(line) for line in hub_text("org/with-record", "training/metrics.jsonl").splitlines()]
    assert {r["step"] for r in log if r.get("split") == "eval"} == {2, 4, 6, 8}


def test_home_paths_in_the_run_are_rewritten_and_in_the_model_refused(hub: HubServer, digits_run: Path,
                                                                       tmp_path: Path, monkeypatch):
    import shutil

    home = tmp_path / "home" / "alice"
    run = home / "runs" / "digits"
    shutil.copytree(digits_run, run)
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["output_dir"] = str(run)
    raw["data"]["train"]["params"]["notes"] = "/home/bob/data/digits.csv"  # another machine's home, too
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("HOME", str(home))
    push_to_hub(run, "org/private-paths")
    published = hub_text("org/private-paths", "training/config.yaml")
    assert str(home) not in published and "/home/bob" not in published and "alice" not in published
    config = yaml.safe_load(published)
    assert config["output_dir"] == "~/runs/digits" and config["data"]["train"]["params"]["notes"] == "~/data/digits.csv"

    model_dir = tmp_path / "named"
    saved = json.loads((run / "model" / "config.json").read_text())
    shutil.copytree(run / "model", model_dir)
    (model_dir / "config.json").write_text(json.dumps({**saved, "name": f"{home}/my-model"}))
    with pytest.raises(HubError, match=r"config.json names a path in a home directory .*nothing was uploaded"):
        push_to_hub(model_dir, "org/named")
    assert hub.state.find("model", "org/named") is None  # refused before the repo was created


def test_a_token_in_any_uploaded_file_is_refused(hub: HubServer, digits_run: Path, tmp_path: Path, monkeypatch):
    import shutil

    run = tmp_path / "leaky"
    shutil.copytree(digits_run, run)
    with (run / "metrics.jsonl").open("a") as log:
        log.write(json.dumps({"step": 9, "note": f"login {TOKEN}"}) + "\n")
    with pytest.raises(HubError, match="training/metrics.jsonl contains a Hub token") as exc:
        push_to_hub(run, "org/leaky")
    assert TOKEN not in str(exc.value)
    monkeypatch.delenv("HF_TOKEN")  # the stored login or --token is found as well
    with pytest.raises(HubError, match="training/metrics.jsonl contains a Hub token"):
        push_to_hub(run, "org/leaky", token=TOKEN)
    assert hub.state.find("model", "org/leaky") is None
