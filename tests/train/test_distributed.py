"""Multi-process training through `mmzoo train --nproc 2` (torch's elastic launcher, gloo on CPU)."""

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
    toy_config,
    write_yaml,
)

pytestmark = pytest.mark.distributed


def train_cli(tmp_path, site, name, nproc, *extra, **changes):
    config = write_yaml(tmp_path / f"{name}.yaml", toy_config(tmp_path / name, **changes))
    args = ["train", str(config), *extra] + (["--nproc", str(nproc)] if nproc > 1 else [])
    return run_cli(args, site, tmp_path)


def weights(tmp_path, name):
    return load_tensors(tmp_path / name / "model" / "model.safetensors")


def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(toy_site, tmp_path):
    """Per-rank batch 4 on 2 ranks vs batch 8 on one: DistributedSampler gives rank r the r-th of every
    pair of the epoch's permutation, so each global batch holds the same examples; DDP averages the
    two ranks' mean gradients, which is the mean over the 8. A plugin encoder has a trainable layer
    its forward never uses, so DDP must also detect the unused parameters."""
    spec = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "vec": {"type": "toy-vec-spare"}}}
    common = {
        "optim__steps": 7,
        "data__train": {"dataset": "toy-blobs", "params": {"size": 48}},
        "model": spec,
    }
    one = train_cli(tmp_path, toy_site, "one", 1, data__batch_size=8, **common)
    calls = tmp_path / "logger-calls.jsonl"
    two = train_cli(tmp_path, toy_site, "two", 2, data__batch_size=4,
                    log_to=[{"type": "toy-recorder", "path": str(calls)}], **common)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    events = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len({pid for pid, *_ in events}) == 1  # rank 0 alone feeds the loggers
    assert [e[1] for e in events].count("start") == 1 and events[0][2]["world_size"] == 2
    assert [e[2] for e in events if e[1] == "log"] == read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert (
        "trainable parameters get no gradient (encoders.vec.spare.weight, encoders.vec.spare.bias)"
        in two.stderr
    )
    assert max_abs_diff(weights(tmp_path, "one"), weights(tmp_path, "two")) < 1e-6
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "two" / "run.json").read_text())["backend"] == "gloo"
    final = read_metrics(tmp_path / "two" / "metrics.jsonl")[-1]
    assert final["split"] == "final" and final["world_size"] == 2
    reference = read_metrics(tmp_path / "one" / "metrics.jsonl")[-1]
    assert final["eval_accuracy"] == reference["eval_accuracy"]
    assert final["eval_loss"] == pytest.approx(reference["eval_loss"], abs=1e-5)
    assert two.stderr.count("mmzoo train: starting") == 1  # rank 0 alone reports


def test_frozen_parts_and_accumulation_under_ddp(toy_site, tmp_path):
    """The frozen image encoder (all of its parameters without gradients) neither breaks DDP nor
    changes; no_sync micro-steps accumulate exactly like one process."""
    common = {"optim__steps": 5, "optim__freeze": ["encoders.img"], "optim__grad_accum": 2}
    one = train_cli(tmp_path, toy_site, "one", 1, data__batch_size=4, **common)
    two = train_cli(tmp_path, toy_site, "two", 2, data__batch_size=2, **common)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "no gradient" not in two.stderr  # nothing trainable is unused: plain DDP
    a, b = weights(tmp_path, "one"), weights(tmp_path, "two")
    assert max_abs_diff(a, b) < 1e-6

    import torch

    import mmzoo

    torch.manual_seed(0)
    init = mmzoo.create_model(TINY_SPEC).state_dict()
    assert all(torch.equal(b[k], init[k]) for k in b if k.startswith("encoders.img."))


def test_ddp_speed_switches_keep_two_ranks_equal_to_one_process(toy_site, tmp_path):
    """static_graph, gradients outside the buckets, small buckets, channels-last weights and fused
    AdamW: two ranks still end where one process with the double batch does."""
    spec = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "img": {**TINY_SPEC["encoders"]["img"],
                                                                     "channels": [4, 8]}}}
    common = {
        "model": spec,
        "optim": {"name": "adamw", "lr": 0.01, "steps": 5, "fused": True},
        "channels_last": True,
        "ddp": {"static_graph": True, "gradient_as_bucket_view": False, "bucket_cap_mb": 0.001},
    }
    one = train_cli(tmp_path, toy_site, "one", 1, data__batch_size=4, **common)
    two = train_cli(tmp_path, toy_site, "two", 2, data__batch_size=2, **common)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    # Adam divides by sqrt(v): the rounding of an all-reduced mean of tiny gradients shows at ~1e-6;
    # a step without the all-reduce would differ by about lr (1e-2)
    assert max_abs_diff(weights(tmp_path, "one"), weights(tmp_path, "two")) < 1e-5
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and run["fused_optimizer"] is True


def test_a_head_using_the_distributed_context_trains_on_the_global_batch(toy_site, tmp_path):
    """The toy head gathers every rank's logits and targets (with gradients) through the context the
    strategy binds: 2 ranks with batch 4 then optimise the loss of the whole batch of 8, exactly as one
    process with batch 8 does (each rank's own-batch loss would not)."""
    spec = {**TINY_SPEC, "head": {"type": "toy-global-cls"}}
    common = {"optim__steps": 5, "model": spec}
    one = train_cli(tmp_path, toy_site, "one", 1, data__batch_size=8, **common)
    calls = tmp_path / "logger-calls.jsonl"
    two = train_cli(tmp_path, toy_site, "two", 2, data__batch_size=4,
                    log_to=[{"type": "toy-recorder", "path": str(calls)}], **common)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    events = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len({pid for pid, *_ in events}) == 1  # rank 0 alone feeds the loggers
    assert [e[1] for e in events].count("start") == 1 and events[0][2]["world_size"] == 2
    assert [e[2] for e in events if e[1] == "log"] == read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert max_abs_diff(weights(tmp_path, "one"), weights(tmp_path, "two")) < 1e-6
    final = read_metrics(tmp_path / "two" / "metrics.jsonl")[-1]
    assert final["eval_bound_world_size"] == 2.0
    assert read_metrics(tmp_path / "one" / "metrics.jsonl")[-1]["eval_bound_world_size"] == 1.0


def test_an_occupied_run_dir_is_refused_before_any_rank_starts(toy_site, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    result = train_cli(tmp_path, toy_site, "busy", 2)
    assert result.returncode == 2
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert "output_dir: '" in result.stderr and "it is never overwritten" in result.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_a_mistake_inside_the_ranks_is_reported_once(toy_site, tmp_path):
    result = train_cli(tmp_path, toy_site, "bad", 2, optim__freeze=["encoders.imgg"])
    assert result.returncode == 2
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert (
        "optim.freeze[0]: 'encoders.imgg' is not a part of this model. Did you mean 'encoders.img'?"
        in result.stderr
    )


@pytest.mark.slow
def test_sigterm_to_the_launcher_checkpoints_every_rank_and_resume_is_exact(toy_site, tmp_path):
    """The launcher signals each rank's process group, DataLoader workers included: the ranks finish
    the step, rank 0 checkpoints, and the resumed run ends bit-exactly where an uninterrupted one does."""
    changes = {
        "data__num_workers": 1,
        "optim__steps": 30,
        "data__batch_size": 4,
        "save_every": 100,
        "optim__name": "adamw",
        "optim__momentum": None,
        "optim__lr": 0.003,
        "model__head": {"type": "classification", "num_classes": 3, "dropout": 0.2, "hidden_dim": 8},
        "data__train": {"dataset": "toy-blobs", "params": {"size": 48, "delay": 0.01}},
    }
    whole = train_cli(tmp_path, toy_site, "whole", 2, **changes)
    assert whole.returncode == 0, whole.stderr

    config = write_yaml(tmp_path / "parted.yaml", toy_config(tmp_path / "parted", **changes))
    proc = popen_cli(["train", str(config), "--nproc", "2"], toy_site, tmp_path)
    metrics = tmp_path / "parted" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and any(r.get("step", 0) >= 3 for r in read_metrics(metrics)):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    steps = ckpt.CheckpointManager(tmp_path / "parted" / "checkpoints", 9).steps()
    assert steps and steps[-1][0] < 30, stderr
    state = ckpt.load_state(steps[-1][1])
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG state, written by rank 0
    assert "stopped by SIGTERM" in stderr

    resumed = train_cli(tmp_path, toy_site, "parted", 2, "--set", "resume=auto", **changes)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {steps[-1][0]}" in resumed.stderr
    assert max_abs_diff(weights(tmp_path, "whole"), weights(tmp_path, "parted")) == 0.0


@pytest.mark.slow
def test_ctrl_c_on_the_process_group_stops_every_rank_cleanly(toy_site, tmp_path):
    """Ctrl-C sends SIGINT to the launcher and the ranks at once, and the launcher forwards it again:
    every rank still finishes its step and rank 0 writes one checkpoint."""
    import os

    changes = {
        "optim__steps": 400,
        "save_every": 1000,
        "data__train": {"dataset": "toy-blobs", "params": {"size": 48, "delay": 0.01}},
    }
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run", **changes))
    proc = popen_cli(["train", str(config), "--nproc", "2"], toy_site, tmp_path, start_new_session=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and any(r.get("step", 0) >= 2 for r in read_metrics(metrics)):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "KeyboardInterrupt" not in stderr and "Traceback" not in stderr, stderr
    assert "stopped by SIGINT" in stderr
    steps = ckpt.CheckpointManager(tmp_path / "run" / "checkpoints", 9).steps()
    assert len(steps) == 1 and steps[0][0] < 400
    assert ckpt.load_state(steps[0][1])["world_size"] == 2


def test_modality_dropout_under_plain_ddp(toy_site, tmp_path):
    """One example per rank: dropout often leaves a rank's batch without an input, so that encoder does
    not run there; its parameters still join the graph (zero gradients), so DDP without the search for
    unused parameters keeps every rank in step, and the run is reproducible."""
    common = {"data__batch_size": 1, "optim__steps": 8, "data__modality_dropout": {"vec": 0.5, "img": 0.5},
              "ddp__find_unused_parameters": False}
    first = train_cli(tmp_path, toy_site, "first", 2, **common)
    again = train_cli(tmp_path, toy_site, "again", 2, **common)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert max_abs_diff(weights(tmp_path, "first"), weights(tmp_path, "again")) == 0.0
