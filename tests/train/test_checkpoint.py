"""Atomic checkpoints: a crash at any moment leaves the previous checkpoints usable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mmzoo.train import checkpoint as ckpt
from tests.train.helpers import REPO


def _model(value: float = 0.0) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


def _check(path, step: int) -> None:
    state = ckpt.load_state(path)
    assert state["step"] == step
    model = _model()
    ckpt.load_model_weights(model, path)
    assert all(bool((p == step).all()) for p in model.parameters())


def test_save_load_and_keep_last_plus_best(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path / "checkpoints", keep_last=2)
    for step in (1, 2, 3, 4, 5):
        manager.save(step, {"step": step}, ckpt.model_writer(_model(step)), keep={2})
    assert [s for s, _ in manager.steps()] == [2, 4, 5]  # the last two, and the best (2)
    for step, path in manager.steps():
        _check(path, step)
    assert manager.latest() == manager.path_for(5)
    assert oct(manager.path_for(5).stat().st_mode & 0o777) != oct(0o700)  # normal permissions, not mkdtemp's


def test_state_loads_with_weights_only(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path, keep_last=1)
    model = _model(1.0)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    path = manager.save(
        7, {"step": 7, "optimizer": optimizer.state_dict(), "rng": [ckpt.capture_rng()]}, ckpt.model_writer(model)
    )
    state = ckpt.load_state(path)  # torch.load(weights_only=True) inside
    assert state["optimizer"]["state"][0]["step"] == 1


def test_rng_states_round_trip():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    saved = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    torch.rand(10), np.random.rand(10), random.random()
    ckpt.restore_rng(saved)
    again = (torch.rand(3), np.random.rand(3), random.random(), np.random.normal())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_failure_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    manager = ckpt.CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {"step": 1}, ckpt.model_writer(_model(1)))

    def torn_save(obj, handle):  # the manager hands torch.save an open file
        handle.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(OSError, match="No space left"):
        manager.save(2, {"step": 2}, ckpt.model_writer(_model(2)))
    assert [s for s, _ in manager.steps()] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001"]  # no temporary left behind
    _check(manager.latest(), 1)


def test_leftovers_of_a_hard_crash_are_ignored_and_cleaned(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {"step": 1}, ckpt.model_writer(_model(1)))
    torn = tmp_path / ".tmp-step-000002.abcd"
    torn.mkdir()
    (torn / ckpt.MODEL_FILE).write_bytes(b"\x00" * 10)
    incomplete = tmp_path / "step-000003"  # a directory without its files is not a checkpoint
    incomplete.mkdir()
    assert manager.latest() == manager.path_for(1)
    manager.remove_temporaries()
    assert not torn.exists()


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "config.yaml"
    ckpt.atomic_write_text(target, "old\n")

    def fail(path):
        path.write_text("new but torn", encoding="utf-8")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        ckpt.atomic_write(target, fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    from mmzoo.train.checkpoint import CheckpointManager, model_writer

    manager = CheckpointManager(Path(sys.argv[1]), keep_last=3)
    latest = manager.steps()
    step = latest[-1][0] if latest else 0
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2), torch.nn.Linear(2, 512 * 1024))
    while True:
        step += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(step)
        manager.save(step, {"step": step, "padding": torch.full((1 << 20,), float(step))}, model_writer(model))
        print(step, flush=True)
""")


def test_sigkill_at_random_moments_never_leaves_a_broken_checkpoint(tmp_path):
    """A writer saving ~12 MB checkpoints in a loop is SIGKILLed at random moments (mostly mid-write);
    after every kill each remaining checkpoint loads completely and holds its own step."""
    directory = tmp_path / "checkpoints"
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE, text=True, env=env
        )
        proc.stdout.readline()  # at least one checkpoint written by this writer
        delay = rng.uniform(0.0, 0.15)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        manager = ckpt.CheckpointManager(directory, keep_last=3)
        steps = manager.steps()
        assert steps, "no complete checkpoint survived"
        for step, path in steps:
            state = ckpt.load_state(path)
            assert state["step"] == step and bool((state["padding"] == step).all())
            weights = torch.nn.Sequential(
                torch.nn.Linear(4, 8), torch.nn.Linear(8, 2), torch.nn.Linear(2, 512 * 1024)
            )
            ckpt.load_model_weights(weights, path)
            assert all(bool((p == step).all()) for p in weights.parameters())
        manager.remove_temporaries()
