"""Speed switches of the trainer: channels-last, fused optimizers, DDP options, compile, malloc tuning.

None of them may change what is learned beyond float rounding; each must really take effect.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.optim import build_optimizer, is_fused
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, toy_config


def run(tmp_path, name="run", hooks=(), **changes):
    return train(validate_config(toy_config(tmp_path / name, **changes)), hooks=hooks)


def two_block_cnn():
    """The toy model with 3x3 convolutions over several channels, whose layouts differ."""
    spec = copy.deepcopy(TINY_SPEC)
    spec["encoders"]["img"]["channels"] = [4, 8]
    return spec


def trained(tmp_path, name):
    return load_tensors(tmp_path / name / "model" / "model.safetensors")


def conv_weights(model):
    """3x3 weights over several input channels: channels-last and contiguous are different layouts."""
    return {n: p for n, p in model.named_parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[2] > 1}


@pytest.mark.parametrize("setting", [True, ["encoders.img"]])
def test_channels_last_trains_with_nhwc_weights_and_saves_loadable_files(toys, tmp_path, setting):
    seen = []

    def layout(trainer):
        weights = conv_weights(trainer.model)
        assert weights, "the toy model has a convolution"
        seen.append(all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                        for w in weights.values()))

    base = run(tmp_path, "base", optim__steps=4, model=two_block_cnn())
    nhwc = run(tmp_path, "nhwc", hooks=[layout], optim__steps=4, channels_last=setting, model=two_block_cnn())
    assert seen == [True] * 4
    assert max_abs_diff(trained(tmp_path, "base"), trained(tmp_path, "nhwc")) < 1e-5
    assert nhwc.metrics["accuracy"] == base.metrics["accuracy"]

    import mmzoo

    rebuilt = mmzoo.create_model(str(tmp_path / "nhwc" / "model"))
    assert max_abs_diff(rebuilt.state_dict(), trained(tmp_path, "nhwc")) == 0.0


def test_channels_last_and_fused_adamw_resume_exactly(toys, tmp_path):
    """Checkpoints of NHWC weights and fused AdamW state restore to the same layout and state."""
    common = {"channels_last": True, "model": two_block_cnn(), "optim__steps": 5}
    common.update(optim__name="adamw", optim__momentum=None, optim__lr=0.01, optim__fused=True)

    def stop_at_two(trainer):
        if trainer.step == 1:  # honoured after the next step
            os.kill(os.getpid(), signal.SIGTERM)

    run(tmp_path, "whole", **common)
    stopped = run(tmp_path, "parted", hooks=[stop_at_two], **common)
    assert not stopped.completed and stopped.step == 2
    seen = []
    resumed = run(tmp_path, "parted", hooks=[lambda t: seen.append(list(conv_weights(t.model).values()))],
                  resume="auto", **common)
    assert resumed.completed
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in seen[0])
    assert max_abs_diff(trained(tmp_path, "whole"), trained(tmp_path, "parted")) == 0.0


def test_channels_last_of_an_unknown_part_is_located(toys, tmp_path):
    with pytest.raises(ConfigError) as info:
        run(tmp_path, channels_last=["encoders.imgg"])
    assert "channels_last[0]: 'encoders.imgg' is not a part of this model. Did you mean 'encoders.img'?" in str(
        info.value
    )


def test_fused_optimizer_is_used_where_torch_has_it_and_learns_the_same(toys, tmp_path):
    adamw = {"optim": {"name": "adamw", "lr": 0.01, "steps": 5, "weight_decay": 0.1}}
    fused = run(tmp_path, "fused", **adamw)
    plain = run(tmp_path, "plain", optim={**adamw["optim"], "fused": False})
    assert json.loads((tmp_path / "fused" / "run.json").read_text())["fused_optimizer"] is True
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["fused_optimizer"] is False
    assert max_abs_diff(trained(tmp_path, "fused"), trained(tmp_path, "plain")) < 1e-5
    assert fused.metrics["accuracy"] == plain.metrics["accuracy"]


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_every_optimizer_takes_the_fused_setting(name):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    raw = {"model": "x", "data": {"train": "t", "batch_size": 2}, "output_dir": "o",
           "optim": {"name": name, "lr": 0.1, "steps": 1}}
    config = validate_config(raw)
    assert config.optim.fused == "auto" and is_fused(build_optimizer(model, config.optim))
    raw["optim"]["fused"] = False
    assert not is_fused(build_optimizer(model, validate_config(raw).optim))


def test_fused_true_without_a_kernel_is_a_config_error(monkeypatch):
    class NoFusedKernel(torch.optim.AdamW):
        def __init__(self, params, fused=None, **options):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on supported devices")
            super().__init__(params, **options)

    monkeypatch.setattr(torch.optim, "AdamW", NoFusedKernel)
    model = torch.nn.Linear(3, 4)
    raw = {"model": "x", "data": {"train": "t", "batch_size": 2}, "output_dir": "o",
           "optim": {"lr": 0.1, "steps": 1, "fused": True}}
    with pytest.raises(ConfigError) as info:
        build_optimizer(model, validate_config(raw).optim)
    assert str(info.value).startswith("optim.fused: torch has no fused adamw kernel for parameters on cpu")
    assert "set optim.fused to auto or false" in str(info.value)
    raw["optim"]["fused"] = "auto"
    assert not is_fused(build_optimizer(model, validate_config(raw).optim))  # falls back quietly


RECORDING = "mmzoo_test_recording"
COMPILED: list[bool] = []  # grad mode while each graph was compiled: True in training, False in evaluation


def _recording_backend(graph, example_inputs):
    COMPILED.append(torch.is_grad_enabled())
    return graph.forward


@pytest.fixture
def recording_backend():
    """A torch.compile backend that records what it compiles (and runs the graph as traced)."""
    from torch._dynamo import register_backend

    try:
        register_backend(_recording_backend, name=RECORDING)
    except AssertionError:  # registered by an earlier test
        pass
    torch.compiler.reset()  # compiled code cached by earlier runs would be reused without compiling
    COMPILED.clear()
    yield COMPILED


@pytest.mark.parametrize("compile_eval", [False, True])
def test_compile_trains_through_the_compiled_module_and_evaluates_as_configured(
    toys, tmp_path, compile_eval, recording_backend
):
    seen = []
    result = run(
        tmp_path,
        hooks=[lambda view: seen.append((view.compiled, view.eval_compiled, view.wrapper, view.strategy))],
        compile={"backend": RECORDING, "eval": compile_eval},
        optim__steps=2,
        eval_every=1,
    )
    assert result.completed
    assert seen == [(True, compile_eval, None, "single")] * 2
    assert True in recording_backend  # the training step went through torch.compile
    assert (False in recording_backend) == compile_eval  # evaluation did only when compile.eval is set
    reference = run(tmp_path, "eager", optim__steps=2, eval_every=1)
    assert max_abs_diff(trained(tmp_path, "run"), trained(tmp_path, "eager")) < 1e-6
    assert result.metrics["loss"] == pytest.approx(reference.metrics["loss"], abs=1e-6)
    assert result.metrics["accuracy"] == reference.metrics["accuracy"]


def test_ddp_options_reach_distributed_data_parallel(tmp_path):
    """One gloo rank in this process: the wrapper DDP gets is built with the configured options."""
    import torch.distributed as dist

    from mmzoo.train.distributed import DistContext
    from mmzoo.train.parallel import LossOnly, wrap_ddp

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), backend="gloo")
        model = LossOnly(torch.nn.Linear(3, 2))
        for raw, expected in [
            ({}, (True, False)),
            ({"gradient_as_bucket_view": False, "static_graph": True, "bucket_cap_mb": 1}, (False, True)),
        ]:
            ddp_config = validate_config(
                {"model": "x", "data": {"train": "t", "batch_size": 2}, "output_dir": "o",
                 "optim": {"lr": 0.1, "steps": 1}, "ddp": raw}
            ).ddp
            ddp = wrap_ddp(model, ctx, [], False, ddp_config)
            assert (ddp.gradient_as_bucket_view, ddp.static_graph) == expected
            assert ddp.bucket_bytes_cap == int(ddp_config.bucket_cap_mb * 1024 * 1024)
    finally:
        dist.destroy_process_group()


PAGE_FAULTS = textwrap.dedent(
    """
    import ctypes, resource, sys
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "tuned":
        from mmzoo.train.memory import tune_malloc
        assert tune_malloc()
    SIZE = 40 << 20  # above glibc's largest automatic mmap threshold (32 MiB)
    def allocate_fill_free():
        block = libc.malloc(SIZE)
        ctypes.memset(block, 1, SIZE)
        libc.free(block)
    allocate_fill_free()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        allocate_fill_free()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_tuning_keeps_large_freed_blocks_for_reuse(tmp_path):
    """A 40 MiB block freed and allocated again: by default glibc unmaps it and the next one is faulted
    in page by page (10,240 faults; 20 with transparent huge pages always on); with the thresholds
    fixed the heap keeps it and the next allocation reuses it without a fault."""

    def page_faults(mode):
        out = subprocess.run([sys.executable, "-c", PAGE_FAULTS, mode], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return int(out.stdout)

    default, tuned = page_faults("default"), page_faults("tuned")
    assert default >= 8 * 20
    assert tuned * 10 < default


def test_malloc_tuning_can_be_turned_off(monkeypatch):
    from mmzoo.train import memory

    monkeypatch.setenv("MMZOO_MALLOC_TUNING", "0")
    assert memory.tune_malloc() is False


def test_speed_switch_mistakes_are_located():
    base = {"model": "x", "data": {"train": "t", "batch_size": 2}, "output_dir": "o",
            "optim": {"lr": 0.1, "steps": 1}}
    cases = [
        ({"ddp": {"static_grap": True}}, "ddp.static_grap: unknown key. Did you mean 'static_graph'?"),
        ({"ddp": {"bucket_cap_mb": 0}}, "ddp.bucket_cap_mb: expected float > 0, got 0"),
        (
            {"find_unused_parameters": True},
            "find_unused_parameters: unknown key. Did you mean 'ddp.find_unused_parameters'?",
        ),
        (
            {"ddp": {"static_graph": True}, "optim": {**base["optim"], "grad_accum": 2}},
            "ddp.static_graph: cannot be combined with optim.grad_accum > 1",
        ),
        ({"channels_last": "yes"}, "channels_last: expected true or false or a list of strings, got 'yes'"),
        ({"optim": {**base["optim"], "fused": "always"}},
         "optim.fused: expected true or false or 'auto', got 'always'"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError) as info:
            validate_config({**base, **change}, "run.yaml")
        assert message in str(info.value), str(info.value)


def test_a_checkpoint_from_an_older_config_layout_still_evaluates(toys, tmp_path):
    """Rebuilding a checkpoint's model reads only the model section of its stored config: a key that
    moved since (find_unused_parameters, now under ddp) does not make old checkpoints unreadable."""
    from mmzoo.train import checkpoint as ckpt
    from mmzoo.train.evaluate import model_from_checkpoint

    result = run(tmp_path, optim__steps=2)
    state = ckpt.load_state(result.checkpoint)
    state["config"].pop("ddp")
    state["config"]["find_unused_parameters"] = "auto"
    torch.save(state, result.checkpoint / ckpt.STATE_FILE)
    model, config = model_from_checkpoint(result.checkpoint)
    assert config["find_unused_parameters"] == "auto"
    assert max_abs_diff(model.state_dict(), load_tensors(result.checkpoint / "model.safetensors")) == 0.0
