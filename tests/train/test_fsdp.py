"""strategy: fsdp (FSDP2) on CPU with gloo ranks: the same training as DDP, sharded checkpoints, and what
it refuses. The resume matrix across strategies and world sizes is in test_fsdp_resume.py."""

from __future__ import annotations

import json

import pytest

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.metrics import read_metrics
from mmzoo.train.rundir import RunDir
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, run_cli, toy_config, write_yaml

CLIP_RUN = {
    "model": "image-text-clip-tiny",
    "data": {
        "train": {"dataset": "digit-captions", "max_examples": 160},
        "eval": {"dataset": "digit-captions", "split": "test", "max_examples": 9},
        "batch_size": 4,
    },
    "optim": {"name": "adamw", "lr": 0.001, "steps": 20},
    "eval_every": 10,
    "log_every": 1,
    "best_metric": "recall@1",
}


def train_cli(tmp_path, site, name, nproc, config):
    path = write_yaml(tmp_path / f"{name}.yaml", {**config, "output_dir": str(tmp_path / name)})
    return run_cli(["train", str(path)] + (["--nproc", str(nproc)] if nproc > 1 else []), site, tmp_path, timeout=600)


def step_losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r and "split" not in r]


def final_weights(run_dir):
    return load_tensors(run_dir / "model" / "model.safetensors")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("nproc", [2, 4])
def test_fsdp_follows_ddps_loss_trajectory_on_a_registry_model(toy_site, tmp_path, nproc):
    """image-text-clip-tiny (a CNN, a byte-level GRU, project + contrastive with a learned temperature, a
    0-dim parameter FSDP cannot shard) on digit-captions, 20 AdamW steps: every step's loss within 1e-4
    (relative) of DDP's, the final model within 1e-5. The 9 evaluation examples fall unevenly on the
    ranks, so a sharded forward must run in lockstep there; each checkpoint is sharded, one file per rank."""
    config = {**CLIP_RUN, "data": {**CLIP_RUN["data"], "batch_size": 8 // nproc}}
    ddp = train_cli(tmp_path, toy_site, "ddp", nproc, config)
    assert ddp.returncode == 0, ddp.stderr
    fsdp = train_cli(tmp_path, toy_site, "fsdp", nproc, {**config, "strategy": "fsdp"})
    assert fsdp.returncode == 0, fsdp.stderr
    expected, found = step_losses(tmp_path / "ddp"), step_losses(tmp_path / "fsdp")
    assert len(found) == 20
    assert max(abs(a - b) / abs(a) for a, b in zip(expected, found, strict=True)) <= 1e-4
    # Reduce-scatter and all-reduce add the ranks' gradients in their own orders (identical for 2 gloo
    # ranks, not for 4); AdamW's normalised steps carry such last-bit differences to ~1e-5 in 20 steps.
    assert max_abs_diff(final_weights(tmp_path / "ddp"), final_weights(tmp_path / "fsdp")) <= 1e-4
    ends = [read_metrics(tmp_path / name / "metrics.jsonl")[-1] for name in ("ddp", "fsdp")]
    assert ends[0]["eval_recall@1"] == ends[1]["eval_recall@1"]

    run = RunDir(tmp_path / "fsdp")
    assert (run.run_info()["strategy"], run.run_info()["world_size"]) == ("fsdp", nproc)
    checkpoint = run.latest_checkpoint()
    assert json.loads((checkpoint / "checkpoint.json").read_text())["strategy"] == "fsdp"
    sharded = sorted(p.name for p in (checkpoint / "sharded").iterdir())
    assert sharded == [".metadata"] + [f"__{rank}_0.distcp" for rank in range(nproc)]
    assert not (checkpoint / "model.safetensors").exists()

    from mmzoo.train.evaluate import model_from_checkpoint  # one process, no process group: DCP gathers it

    model, _ = model_from_checkpoint(checkpoint)
    restored = {k: v for k, v in model.state_dict().items()}
    assert max_abs_diff(restored, final_weights(tmp_path / "fsdp")) == 0.0


@pytest.mark.slow
@pytest.mark.distributed
def test_frozen_parts_lr_multipliers_accumulation_clipping_and_activation_checkpointing(toy_site, tmp_path):
    """The optimisation switches under fsdp end where DDP ends: a frozen part, per-part learning rates,
    2 accumulated micro-batches (gradient sync off for the first), clipping of the global norm over the
    shards, and the image encoder's activations recomputed in backward."""
    config = {
        **CLIP_RUN,
        "optim": {
            "name": "adamw", "lr": 0.001, "steps": 6, "clip_grad_norm": 0.05, "grad_accum": 2,
            "lr_multipliers": {"encoders.text": 0.5}, "freeze": ["fusion"],
        },
        "activation_checkpointing": ["encoders.image"],
        "eval_every": 3,
    }
    ddp = train_cli(tmp_path, toy_site, "ddp", 2, config)
    assert ddp.returncode == 0, ddp.stderr
    fsdp = train_cli(tmp_path, toy_site, "fsdp", 2, {**config, "strategy": "fsdp"})
    assert fsdp.returncode == 0, fsdp.stderr
    a, b = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "fsdp")
    # the clipped norm is summed over shards in another order than over whole gradients: ~1e-6
    assert max_abs_diff(a, b) <= 1e-5
    import torch

    import mmzoo

    torch.manual_seed(0)  # as every run starts
    start = mmzoo.create_model("image-text-clip-tiny").state_dict()
    assert all(max_abs_diff({k: b[k]}, {k: start[k]}) == 0.0 for k in b if k.startswith("fusion."))
    assert max(abs(x - y) / abs(x) for x, y in zip(step_losses(tmp_path / "ddp"), step_losses(tmp_path / "fsdp"),
                                                   strict=True)) <= 1e-4


@pytest.mark.slow
@pytest.mark.distributed
def test_fp16_loss_scaling_skips_the_same_steps_as_ddp(toy_site, tmp_path):
    """precision: fp16 on 2 ranks trains like DDP: a step whose gradients overflow at the loss scale is
    skipped and the scale halved, here the same steps as DDP's (whose gradients are whole on every rank).
    (This run's overflow reaches both ranks' shards; that ShardedGradScaler agrees on an overflow in one
    rank's shards alone is torch's own tested behaviour.)"""
    from mmzoo.train import checkpoint as ckpt

    config = {**CLIP_RUN, "precision": "fp16", "optim": {**CLIP_RUN["optim"], "steps": 6}, "eval_every": 6}
    ddp = train_cli(tmp_path, toy_site, "ddp", 2, config)
    assert ddp.returncode == 0, ddp.stderr
    fsdp = train_cli(tmp_path, toy_site, "fsdp", 2, {**config, "strategy": "fsdp"})
    assert fsdp.returncode == 0, fsdp.stderr
    scales = [ckpt.load_state(RunDir(tmp_path / name).latest_checkpoint())["scaler"]["scale"]
              for name in ("ddp", "fsdp")]
    assert scales[0] < 2.0**16 and scales[1] == scales[0]  # at least one step skipped, the same ones
    expected, found = step_losses(tmp_path / "ddp"), step_losses(tmp_path / "fsdp")
    assert len(found) == 6
    # fp16 rounding: FSDP casts parameters to fp16 for every op, autocast only for matmuls and convolutions
    assert max(abs(a - b) / abs(a) for a, b in zip(expected, found, strict=True)) <= 1e-2


def run_in_process(tmp_path, name, **changes):
    return train(validate_config(toy_config(tmp_path / name, **changes)))


@pytest.mark.slow
def test_fsdp_on_one_rank_with_compile_trains_like_one_process(toys, tmp_path):
    """A world of one (a process group of one): the whole model is one shard; with torch.compile the
    training step runs the compiled loss through FSDP's hooks."""
    run_in_process(tmp_path, "single", optim__steps=4, compile=True)
    sharded = run_in_process(tmp_path, "fsdp", optim__steps=4, compile=True, strategy="fsdp")
    assert sharded.completed and RunDir(tmp_path / "fsdp").run_info()["strategy"] == "fsdp"
    a = load_tensors(tmp_path / "single" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "fsdp" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) <= 1e-5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fsdp": {"cpu_offload": True}}, "fsdp.cpu_offload: the model already lives in host memory on device cpu"),
        ({"channels_last": True}, "channels_last: not supported with strategy fsdp"),
        ({"fsdp": {"shard": ["encoders.imgg"]}}, r"fsdp.shard\[0\]: 'encoders.imgg' is not a part of this model. "
                                                 "Did you mean 'encoders.img'"),
        ({"fsdp": {"shard": ["encoders.*.nope.*"]}}, r"fsdp.shard\[0\]: 'encoders.\*.nope.\*' matches no module"),
    ],
)
def test_what_fsdp_refuses_is_said_before_training(toys, tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        run_in_process(tmp_path, "refused", strategy="fsdp", **changes)


def test_fsdp_config_mistakes_are_located():
    raw = toy_config("o", strategy="fsdp", fsdp={"shard": "everything", "cpu_ofload": True})
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    text = str(caught.value)
    assert "fsdp.cpu_ofload: unknown key. Did you mean 'cpu_offload'?" in text
    assert "fsdp.shard: expected 'auto' or a list of strings, got 'everything'" in text


def test_the_tiny_model_shards_its_repeated_blocks_by_default():
    """shard: auto picks each encoder's repeated blocks, each encoder and the fusion."""
    import mmzoo
    from mmzoo.train.selection import auto_units, select_modules

    spec = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "img": {**TINY_SPEC["encoders"]["img"],
                                                                     "channels": [4, 8]}}}
    model = mmzoo.create_model(spec, device="meta")
    units = auto_units(model)
    assert units[-1] == "fusion" and "encoders.vec" in units and "encoders.img" in units
    blocks = [u for u in units if u.startswith("encoders.img.")]
    assert len(blocks) == 2 and len({type(model.get_submodule(b)) for b in blocks}) == 1
    pattern = blocks[0].rsplit(".", 1)[0] + ".*"
    assert list(select_modules(model, [pattern], "fsdp.shard")) == blocks


def test_a_module_list_stands_for_each_of_its_modules():
    import mmzoo
    from mmzoo.train.selection import select_modules

    spec = {"encoders": {"audio": {"type": "mel-cnn", "n_mels": 8, "channels": [4, 4, 4], "output_dim": 8}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec, device="meta")
    assert list(select_modules(model, ["encoders.audio.blocks", "fusion"], "x")) == [
        "encoders.audio.blocks.0", "encoders.audio.blocks.1", "encoders.audio.blocks.2", "fusion"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_gathers_parameters_in_its_dtype_and_keeps_fp32_shards(toys, tmp_path, precision):
    """precision: bf16/fp16 under fsdp is FSDP's mixed-precision policy: while a unit runs, its parameters
    are the low-precision copies gathered from the shards; the shards, the optimizer and the saved model
    stay fp32. fp16 scales the loss with torch's ShardedGradScaler over the sharded gradients. (A world of
    one: a process group of one, the whole model in one shard.)"""
    import math

    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    seen = {}

    def watch(view):
        if view.step == 1:
            fusion = view.model.fusion

            def record(module, args):
                seen["in forward"] = {p.dtype for p in module.parameters()}

            fusion.register_forward_pre_hook(record)
        seen["shards"] = {p.dtype for p in view.model.parameters()}

    spec = {**TINY_SPEC, "fusion": {"type": "concat", "dim": 8}}
    run = tmp_path / precision
    train(validate_config(toy_config(run, model=spec, strategy="fsdp", precision=precision, optim__steps=3)),
          hooks=[watch])
    assert seen == {"in forward": {dtype}, "shards": {torch.float32}}
    assert {t.dtype for t in load_tensors(run / "model" / "model.safetensors").values()} == {torch.float32}
    losses = step_losses(run)
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
