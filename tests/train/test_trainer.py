"""The training loop in one process: outputs, exact resume, faults, freezing, precision, accumulation."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
import yaml

import mmzoo
from mmzoo.errors import ConfigError, UnknownNameError
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import validate_config
from mmzoo.train.metrics import read_metrics
from mmzoo.train.trainer import NonFiniteLossError, train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, toy_config


def run(tmp_path, name="run", hooks=(), **changes):
    config = validate_config(toy_config(tmp_path / name, **changes))
    return train(config, hooks=hooks)


def sigterm_at(step):
    def hook(trainer):
        if trainer.step == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def test_a_run_writes_everything_a_push_needs(toys, tmp_path):
    result = run(tmp_path, optim__steps=8, eval_every=4)
    run_dir = tmp_path / "run"
    assert result.completed and result.step == 8 and result.world_size == 1
    assert validate_config(yaml.safe_load((run_dir / "config.yaml").read_text())).optim.steps == 8
    records = read_metrics(run_dir / "metrics.jsonl")
    train_lines = [r for r in records if "loss" in r and "split" not in r]
    assert [r["step"] for r in train_lines] == list(range(1, 9))
    assert all(r["samples_per_s"] > 0 and r["lr"] > 0 for r in train_lines)
    evals = [r for r in records if r.get("split") == "eval"]
    assert [r["step"] for r in evals] == [4, 8] and {"eval_loss", "eval_accuracy"} <= evals[0].keys()
    assert records[-1]["split"] == "final" and records[-1]["world_size"] == 1
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run_dir / "run.json").read_text())["world_size"] == 1
    saved = json.loads((run_dir / "model" / "config.json").read_text())
    assert saved["metrics"]["accuracy"] == pytest.approx(evals[-1]["eval_accuracy"])
    assert saved["datasets"] == ["toy-blobs"]
    # the model directory rebuilds the trained model
    model = mmzoo.create_model(str(run_dir / "model"))
    final = load_tensors(run_dir / "checkpoints" / "step-000008" / "model.safetensors")
    assert max_abs_diff({k: v for k, v in model.state_dict().items() if k in final}, final) == 0.0


def test_an_existing_run_dir_is_never_overwritten(toys, tmp_path):
    run(tmp_path, optim__steps=2)
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(
        ConfigError, match="already exists and is not empty; it is never overwritten. Set resume: auto"
    ):
        run(tmp_path, optim__steps=2)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before


def test_resume_of_a_finished_run_changes_nothing(toys, tmp_path):
    run(tmp_path, optim__steps=3)
    weights = load_tensors(tmp_path / "run" / "model" / "model.safetensors")
    again = run(tmp_path, optim__steps=3, resume="auto")
    assert again.completed and again.step == 3
    assert max_abs_diff(weights, load_tensors(tmp_path / "run" / "model" / "model.safetensors")) == 0.0


EXACT = {
    "optim__steps": 14,
    "optim__grad_accum": 2,
    "optim__name": "adamw",
    "optim__lr": 0.01,
    "optim__momentum": None,
    "optim__warmup_steps": 3,
    "data__batch_size": 5,
    "data__train": {"dataset": "toy-blobs", "params": {"size": 47}},
    "model__head": {"type": "classification", "num_classes": 3, "dropout": 0.3, "hidden_dim": 16},
    "save_every": 100,
    "eval_every": 5,
}


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_sigterm_then_resume_auto_ends_exactly_like_an_uninterrupted_run(toys, tmp_path, workers):
    """Dropout, shuffling, accumulation with a short last micro-batch, warmup and an interruption
    mid-epoch: the resumed run's final parameters equal the uninterrupted run's bit for bit."""
    changes = {**EXACT, "data__num_workers": workers}
    whole = run(tmp_path, "whole", **changes)
    stopped = run(tmp_path, "parted", hooks=[sigterm_at(4)], **changes)
    assert stopped.stopped_by == "SIGTERM" and not stopped.completed
    assert stopped.step == 5  # the signal is honoured after the step that follows it, on every rank alike
    assert [s for s, _ in ckpt.CheckpointManager(tmp_path / "parted" / "checkpoints", 9).steps()][-1] == 5
    assert not (tmp_path / "parted" / "model").exists()
    resumed = run(tmp_path, "parted", resume="auto", **changes)
    assert resumed.completed and resumed.step == whole.step == 14
    a = load_tensors(tmp_path / "whole" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "parted" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) == 0.0
    steps = [r["step"] for r in read_metrics(tmp_path / "parted" / "metrics.jsonl") if r.get("split") is None]
    assert steps == list(range(1, 15))  # no step logged twice after the resume
    assert resumed.metrics == whole.metrics


def test_resume_from_an_explicit_checkpoint_path(toys, tmp_path):
    run(tmp_path, "first", optim__steps=6, save_every=2, keep_last=5)
    checkpoint = tmp_path / "first" / "checkpoints" / "step-000004"
    resumed = run(tmp_path, "second", optim__steps=6, resume=str(checkpoint))
    assert resumed.completed
    a = load_tensors(tmp_path / "first" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "second" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) == 0.0
    with pytest.raises(ConfigError, match="resume: '.*nowhere' is not a checkpoint"):
        run(tmp_path, "third", optim__steps=6, resume=str(tmp_path / "nowhere"))


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(toys, tmp_path):
    # unshuffled batches of 8: example 37 is in the 5th batch, so step 5 overflows
    changes = {
        "data__train": {"dataset": "toy-blobs", "params": {"size": 48, "blowup_index": 37}},
        "data__shuffle": False,
        "save_every": 2,
        "optim__steps": 12,
    }
    with pytest.raises(NonFiniteLossError) as info:
        run(tmp_path, **changes)
    message = str(info.value)
    assert "the training loss is nan at step 5 (epoch 0)" in message
    assert "the last good checkpoint is" in message and "step-000004 (step 4)" in message
    manager = ckpt.CheckpointManager(tmp_path / "run" / "checkpoints", 9)
    assert [s for s, _ in manager.steps()] == [2, 4]
    weights = load_tensors(manager.latest() / "model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
    assert not (tmp_path / "run" / "model").exists()


def test_frozen_parts_do_not_change_and_stay_in_eval_mode(toys, tmp_path):
    seen = []
    run(
        tmp_path,
        "frozen",
        hooks=[lambda t: seen.append(t.model.encoders["img"].training)],
        optim__freeze=["encoders.img", "fusion"],
        optim__steps=4,
        optim__lr_multipliers={"head": 2.0},
    )
    torch.manual_seed(0)  # the trainer initialises under the config's seed (0)
    init = mmzoo.create_model(TINY_SPEC).state_dict()
    frozen = load_tensors(tmp_path / "frozen" / "model" / "model.safetensors")
    for name, value in frozen.items():
        if name.startswith("encoders.img."):
            assert torch.equal(value, init[name]), name
    assert any(not torch.equal(frozen[n], init[n]) for n in frozen if n.startswith("encoders.vec."))
    assert seen == [False] * 4


def test_gradient_accumulation_weights_micro_batches_by_examples(toys, tmp_path):
    """Batch 4 x accumulation 3 equals batch 12 in one go, including a short last batch of the epoch
    (44 examples: batches of 12, 12, 12, 8 / micro-batches 4 x 11)."""
    common = {
        "data__train": {"dataset": "toy-blobs", "params": {"size": 44}},
        "optim__steps": 8,
        "data__shuffle": True,
    }
    run(tmp_path, "big", data__batch_size=12, **common)
    run(tmp_path, "accum", data__batch_size=4, optim__grad_accum=3, **common)
    a = load_tensors(tmp_path / "big" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "accum" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) < 1e-5


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu(toys, tmp_path, precision):
    result = run(tmp_path, precision=precision, optim__steps=4, optim__clip_grad_norm=1.0)
    assert result.completed and math.isfinite(result.metrics["loss"])
    state = ckpt.load_state(result.checkpoint)
    if precision == "fp16":
        assert state["scaler"]["scale"] > 0  # loss scaling is on and checkpointed
    else:
        assert state["scaler"] is None


def test_compile(toys, tmp_path):
    result = run(tmp_path, compile={"backend": "eager"}, optim__steps=2)
    assert result.completed
    assert set(load_tensors(tmp_path / "run" / "model" / "model.safetensors")) == set(
        load_tensors(result.checkpoint / "model.safetensors")
    )  # no "_orig_mod." prefixes


def test_best_checkpoint_is_kept_beside_the_last(toys, tmp_path):
    result = run(
        tmp_path,
        optim__steps=8,
        eval_every=1,
        keep_last=1,
        best_metric="loss",
        optim__lr=0.5,
        optim__momentum=0.0,
    )
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r.get("split") == "eval"]
    best = min(records, key=lambda r: r["eval_loss"])["step"]
    steps = [s for s, _ in ckpt.CheckpointManager(tmp_path / "run" / "checkpoints", 1).steps()]
    assert steps == sorted({best, 8})
    assert ckpt.load_state(result.checkpoint)["best"]["step"] == best


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"model": {"name": "no-such-model"}}, UnknownNameError, "model: "),
        ({"data__train": {"dataset": "toy-blobz"}}, UnknownNameError, "data.train: dataset 'toy-blobz'"),
        (
            {"data__train": {"dataset": "toy-blobs", "split": "validation"}},
            mmzoo.MmzooError,
            "data.train: dataset 'toy-blobs' (split 'validation')",
        ),
        ({"optim__freeze": ["encoders.image"]}, ConfigError, "Did you mean 'encoders.img'?"),
        (
            {"data__batch_size": 64, "data__drop_last": True},
            ConfigError,
            "data.batch_size: 64 is more than the 48 examples",
        ),
    ],
)
def test_setup_mistakes_are_located(toys, tmp_path, changes, error, message):
    with pytest.raises(error) as info:
        run(tmp_path, **changes)
    assert message in str(info.value)


def test_contrastive_image_text_model_trains_without_targets(tmp_path):
    """A head that needs no target (CLIP-style) on the real image-caption set; its retrieval metrics
    are evaluated and land in the saved model's metrics."""
    config = validate_config(
        {
            "model": "image-text-clip-tiny",
            "data": {
                "train": {"dataset": "digit-captions", "params": {"limit": 48}},
                "eval": {"dataset": "digit-captions", "split": "val", "params": {"limit": 16}},
                "batch_size": 8,
            },
            "optim": {"lr": 1e-3, "steps": 3},
            "output_dir": str(tmp_path / "clip"),
        }
    )
    result = train(config)
    assert result.completed and math.isfinite(result.metrics["loss"])
    assert 0.0 <= result.metrics["recall@1"] <= 1.0 and result.eval_examples == 16
    saved = json.loads((tmp_path / "clip" / "model" / "config.json").read_text())
    assert saved["name"] == "image-text-clip-tiny" and "recall@1" in saved["metrics"]


def test_random_preprocessing_does_not_depend_on_the_number_of_workers(toys, tmp_path):
    """Each batch is preprocessed under its own seed, whichever worker builds it: 1 or 2 workers give
    the same augmentation, so the same parameters; and an interrupted run resumes exactly."""
    spec = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "vec": {"type": "toy-vec-jitter"}}}
    common = {"model": spec, "optim__steps": 9, "data__batch_size": 6, "save_every": 100}
    run(tmp_path, "one", data__num_workers=1, **common)
    run(tmp_path, "two", data__num_workers=2, **common)
    run(tmp_path, "parted", hooks=[sigterm_at(3)], data__num_workers=2, **common)
    run(tmp_path, "parted", data__num_workers=2, resume="auto", **common)
    one = load_tensors(tmp_path / "one" / "model" / "model.safetensors")
    assert max_abs_diff(one, load_tensors(tmp_path / "two" / "model" / "model.safetensors")) == 0.0
    assert max_abs_diff(one, load_tensors(tmp_path / "parted" / "model" / "model.safetensors")) == 0.0
