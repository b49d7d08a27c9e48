"""Resume across strategies and world sizes: whole checkpoints (single, ddp) and sharded ones (fsdp) are
read by every strategy, in any world size, and training continues where the uninterrupted run goes.

The math allows exactness here: with a global batch of 8 (1 rank x 8, 2 x 4, 4 x 2) every layout sees
the same examples in every step (DistributedSampler's order) and averages the same gradients; the toy
model draws no random numbers while training. What remains is the order of float additions (all-reduce,
reduce-scatter, sharded norms), hence the 1e-5 bound; AdamW's state travels with the checkpoint (a resume
that lost it would differ by about lr).
"""

from __future__ import annotations

import json

import pytest

from tests.train.helpers import load_tensors, max_abs_diff, run_cli, toy_config, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

COMMON = {
    "optim": {"name": "adamw", "lr": 0.01, "steps": 6, "weight_decay": 0.01},
    "save_every": 3,
    "keep_last": 3,
}


def run(tmp_path, site, name, nproc, strategy, resume=None):
    changes = {**COMMON, "strategy": strategy, "data__batch_size": 8 // nproc}
    if resume is not None:
        changes["resume"] = str(resume)
    config = write_yaml(tmp_path / f"{name}.yaml", toy_config(tmp_path / name, **changes))
    result = run_cli(["train", str(config)] + (["--nproc", str(nproc)] if nproc > 1 else []), site, tmp_path,
                     timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def weights(tmp_path, name):
    return load_tensors(tmp_path / name / "model" / "model.safetensors")


def step3(tmp_path, name):
    return tmp_path / name / "checkpoints" / "step-000003"


def test_resume_across_world_sizes_and_strategies(toy_site, tmp_path):
    run(tmp_path, toy_site, "single", 1, "single")  # the reference, uninterrupted
    run(tmp_path, toy_site, "fsdp2", 2, "fsdp")
    run(tmp_path, toy_site, "ddp2", 2, "ddp")
    reference = weights(tmp_path, "single")
    for name in ("fsdp2", "ddp2"):
        assert max_abs_diff(reference, weights(tmp_path, name)) <= 1e-5, name
    assert (step3(tmp_path, "fsdp2") / "sharded" / ".metadata").is_file()
    assert (step3(tmp_path, "ddp2") / "model.safetensors").is_file()

    cases = [
        ("fsdp2-to-single1", step3(tmp_path, "fsdp2"), 1, "single"),  # sharded, 2 ranks -> whole, 1 process
        ("fsdp2-to-ddp2", step3(tmp_path, "fsdp2"), 2, "ddp"),  # sharded -> whole replicas, same layout
        ("ddp2-to-fsdp2", step3(tmp_path, "ddp2"), 2, "fsdp"),  # whole -> sharded
        ("single1-to-fsdp4", step3(tmp_path, "single"), 1 * 4, "fsdp"),  # whole, 1 process -> 4 shards
    ]
    for name, checkpoint, nproc, strategy in cases:
        result = run(tmp_path, toy_site, name, nproc, strategy, resume=checkpoint)
        assert f"resuming at step 3 from {checkpoint}" in result.stderr, name
        assert max_abs_diff(reference, weights(tmp_path, name)) <= 1e-5, name
        info = json.loads((tmp_path / name / "run.json").read_text())
        assert (info["strategy"], info["world_size"]) == (strategy, nproc), name
    # In the very layout it was written in, a sharded checkpoint continues as the run it came from.
    assert max_abs_diff(weights(tmp_path, "fsdp2"), weights(tmp_path, "fsdp2-to-ddp2")) <= 1e-6
