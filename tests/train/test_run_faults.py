"""#15 points 7, 8, 11 and 12 for the trainer: one run per run directory, a full disk, an unwritable
output_dir, one final record per finished run, and the launcher's temporary folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from mmzoo.errors import ConfigError, StorageError
from mmzoo.train import checkpoint as ckpt
from mmzoo.train.config import validate_config
from mmzoo.train.distributed import remove_stale_launch_dirs
from mmzoo.train.metrics import read_metrics
from mmzoo.train.rundir import LOCK_OWNER_FILE, RunDir
from mmzoo.train.trainer import train
from tests.train.helpers import cli_env, load_tensors, max_abs_diff, popen_cli, toy_config, write_yaml


def run(tmp_path, name="run", hooks=(), **changes):
    return train(validate_config(toy_config(tmp_path / name, **changes)), hooks=hooks)


# --- point 12: one final record ----------------------------------------------------------------------


def test_resuming_a_finished_run_keeps_one_final_record(toys, tmp_path):
    run(tmp_path, optim__steps=3)
    for _ in range(2):
        again = run(tmp_path, optim__steps=3, resume="auto")
        assert again.completed and again.step == 3
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    finals = [r for r in records if r.get("split") == "final"]
    assert len(finals) == 1 and finals[0]["step"] == 3 and records[-1] is finals[0]
    assert [r["step"] for r in records if "loss" in r and "split" not in r] == [1, 2, 3]


# --- point 7: one run per run directory --------------------------------------------------------------


def wait_for(predicate, what, timeout=120.0, proc=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_second_run_into_a_busy_output_dir_is_refused_naming_the_holder(toys, toy_site, tmp_path):
    config = toy_config(tmp_path / "shared", optim__steps=400)
    config["data"]["train"]["params"]["delay"] = 0.02  # a slow run: it holds the directory a while
    path = write_yaml(tmp_path / "run.yaml", config)
    first = popen_cli(["train", str(path)], toy_site, tmp_path)
    try:
        owner = tmp_path / "shared" / LOCK_OWNER_FILE
        wait_for(lambda: (tmp_path / "shared" / "metrics.jsonl").exists(), "the first run to log", proc=first)
        assert json.loads(owner.read_text())["pid"] == first.pid
        before = (tmp_path / "shared" / "metrics.jsonl").read_text()
        for resume in (None, "auto"):  # a fresh start and a resume are both refused while it runs
            with pytest.raises(ConfigError) as err:
                run(tmp_path, "shared", optim__steps=4, resume=resume)
            assert f"'{tmp_path / 'shared'}' is in use by another run (pid {first.pid})" in str(err.value)
        assert (tmp_path / "shared" / "metrics.jsonl").read_text().startswith(before)
    finally:
        first.kill()  # a crash: the kernel drops its lock
        first.communicate()
    resumed = run(tmp_path, "shared", optim__steps=4, resume="auto")  # the lock did not outlive its holder
    assert resumed.completed and not (tmp_path / "shared" / LOCK_OWNER_FILE).exists()
    assert not RunDir(tmp_path / "shared").is_run() or RunDir(tmp_path / "shared").final_model() is not None


def test_the_lock_files_alone_do_not_make_a_run_dir_occupied(toys, tmp_path):
    run(tmp_path, "first", optim__steps=1)
    assert sorted(p.name for p in (tmp_path / "first").iterdir() if p.name.startswith(".mmzoo-run"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".mmzoo-run.lock").touch()  # left by a run that failed before writing anything
    assert run(tmp_path, "empty", optim__steps=1).completed


def test_a_run_refused_before_it_writes_leaves_no_folders_behind(toys, tmp_path):
    nested = tmp_path / "new" / "deeper"
    with pytest.raises(ConfigError, match="unknown logger"):
        train(validate_config(toy_config(nested / "run", log_to=[{"type": "no-such-logger"}])))
    assert not (tmp_path / "new").exists()  # the lock made them; nothing was written, so they went with it
    (tmp_path / "kept").mkdir()
    with pytest.raises(ConfigError, match="unknown logger"):
        train(validate_config(toy_config(tmp_path / "kept", log_to=[{"type": "no-such-logger"}])))
    assert (tmp_path / "kept").is_dir()  # the user's own folder stays


# --- point 11: an unwritable output_dir --------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a directory nobody may write (/sys)")
def test_an_output_dir_that_cannot_be_written_is_one_config_error(toys, tmp_path):
    config = validate_config(toy_config("/sys/mmzoo-test-run", optim__steps=1))
    with pytest.raises(ConfigError, match=r"output_dir: '/sys/mmzoo-test-run' cannot be written \(\w+Error"):
        train(config)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_output_dir_in_a_read_only_directory_is_one_config_error(toys, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="cannot be written .*PermissionError"):
        run(tmp_path / "ro", "run", optim__steps=1)


# --- point 8: a full disk ----------------------------------------------------------------------------

# The trainer in a subprocess whose hook, after step FULL_AT, caps the size of any file the process writes
# (RLIMIT_FSIZE, with SIGXFSZ ignored): from then on every write past the cap fails with EFBIG inside the
# real writers (safetensors' Rust writer, torch.save, Python files), as a full disk fails them with ENOSPC.
# Both reach mmzoo the same way; ENOSPC itself cannot be produced without root (a small tmpfs).
FILL_DISK = """
import resource, signal, sys, yaml
from mmzoo.errors import MmzooError
from mmzoo.train.config import validate_config
from mmzoo.train.trainer import train

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
config = validate_config(yaml.safe_load(open(sys.argv[1])))
cap, full_at = int(sys.argv[2]), int(sys.argv[3])


def fill_disk(view):
    if view.step == full_at:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))


try:
    train(config, hooks=[fill_disk])
except MmzooError as exc:
    print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(2)
"""


# ~11,000 parameters: weights of ~45 KB (the trainer state ~90 KB with momentum), over the 16 KB cap, while
# metrics.jsonl, config.yaml, run.json and checkpoint.json stay under it.
WIDE_VEC = {"type": "mlp", "in_dim": 8, "hidden_dims": [128, 64], "output_dim": 16}


def train_until_full(tmp_path, site, name, full_at, **changes):
    config = toy_config(tmp_path / name, save_every=2, keep_last=5, model__encoders__vec=WIDE_VEC, **changes)
    path = write_yaml(tmp_path / f"{name}.yaml", config)
    return subprocess.run([sys.executable, "-c", FILL_DISK, str(path), str(16 * 1024), str(full_at)],
                          capture_output=True, text=True, env=cli_env(site), cwd=tmp_path, timeout=300)


def test_a_full_disk_during_a_checkpoint_is_one_error_and_the_run_resumes(toys, toy_site, tmp_path):
    result = train_until_full(tmp_path, toy_site, "full", full_at=3, optim__steps=6)
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    checkpoint = tmp_path / "full" / "checkpoints" / "step-000004"
    assert error.startswith(f"error: StorageError: cannot write {checkpoint / 'model.safetensors'}: the file is "
                            f"over the file-size limit (ulimit -f) (") and " free on that disk)" in error
    assert "checkpoint step-000002 is intact, and nothing of step-000004 was kept" in error
    assert "continue with resume: auto" in error and "Traceback" not in result.stderr
    manager = ckpt.CheckpointManager(tmp_path / "full" / "checkpoints", 5)
    assert [s for s, _ in manager.steps()] == [2]
    assert [p.name for p in manager.directory.iterdir()] == ["step-000002"]  # no temporary left behind
    same = {"optim__steps": 6, "save_every": 2, "keep_last": 5, "model__encoders__vec": WIDE_VEC}
    resumed = run(tmp_path, "full", resume="auto", **same)
    whole = run(tmp_path, "whole", **same)
    assert resumed.completed and resumed.step == whole.step == 6
    a = load_tensors(tmp_path / "full" / "model" / "model.safetensors")
    assert max_abs_diff(a, load_tensors(tmp_path / "whole" / "model" / "model.safetensors")) == 0.0


def test_a_full_disk_during_the_final_model_write_keeps_the_last_checkpoint(toys, toy_site, tmp_path):
    # the disk fills once the last checkpoint is written: the cap is set as the final model is saved
    code = FILL_DISK.replace("    train(config, hooks=[fill_disk])", FULL_AT_THE_FINAL_MODEL)
    config = toy_config(tmp_path / "last", optim__steps=2, model__encoders__vec=WIDE_VEC)
    path = write_yaml(tmp_path / "last.yaml", config)
    result = subprocess.run([sys.executable, "-c", code, str(path), str(16 * 1024), "0"],
                            capture_output=True, text=True, env=cli_env(toy_site), cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    written = tmp_path / "last" / ".tmp-model" / "model.safetensors"
    assert error.startswith(f"error: StorageError: cannot write {written}: the file is over the file-size limit")
    assert "the final model was not written, and checkpoint step-000002 is intact" in error
    assert not (tmp_path / "last" / "model").exists() and not (tmp_path / "last" / ".tmp-model").exists()
    assert [r for r in read_metrics(tmp_path / "last" / "metrics.jsonl") if r.get("split") == "final"] == []
    resumed = run(tmp_path, "last", optim__steps=2, model__encoders__vec=WIDE_VEC, resume="auto")
    assert resumed.completed and RunDir(tmp_path / "last").final_model() is not None
    finals = [r for r in read_metrics(tmp_path / "last" / "metrics.jsonl") if r.get("split") == "final"]
    assert len(finals) == 1


FULL_AT_THE_FINAL_MODEL = """    import mmzoo.train.artifacts as artifacts

    save_model = artifacts.save_model

    def save_on_a_full_disk(*args, **kwargs):
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))
        return save_model(*args, **kwargs)

    artifacts.save_model = save_on_a_full_disk
    train(config)"""


def test_a_full_disk_while_saving_a_model_leaves_no_partial_file(tmp_path):
    """save_pretrained outside the trainer: the same StorageError, no model.safetensors.tmp left."""
    code = (
        "import resource, signal, sys, mmzoo\n"
        "from mmzoo.errors import StorageError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "spec = {'encoders': {'x': {'type': 'mlp', 'in_dim': 64, 'hidden_dims': [256], 'output_dim': 64}},\n"
        "        'fusion': 'concat', 'head': {'type': 'classification', 'num_classes': 3}}\n"
        "model = mmzoo.create_model(spec)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    model.save_pretrained(sys.argv[1])\n"
        "except StorageError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"cannot write {tmp_path / 'm' / 'model.safetensors'}: the file is over")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == []


def test_storage_error_is_what_a_writer_out_of_room_raises():
    import errno

    from mmzoo.storage import out_of_room, writing

    with pytest.raises(StorageError, match=r"cannot write /x/y: no space left on the device \(.* free on"):
        with writing("/x/y"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError):  # not a lack of room: unchanged
        with writing("/x/y"):
            raise PermissionError(errno.EACCES, "denied")
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")  # noqa: B904
    except RuntimeError as exc:
        assert out_of_room(exc) == errno.EDQUOT
    assert out_of_room(Exception("Error while serializing: I/O error: No space left (os error 28)")) == errno.ENOSPC


# --- point 12: the launcher's temporary folders -------------------------------------------------------


def test_launch_folders_of_dead_launchers_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f"mmzoo-launch-{int(dead.stdout)}-abc123"
    (stale / "run" / "attempt_0" / "0").mkdir(parents=True)
    (stale / "run" / "attempt_0" / "0" / "error.json").write_text("{}")
    alive = tmp_path / f"mmzoo-launch-{os.getpid()}-def456"
    alive.mkdir()
    other = tmp_path / "mmzoo-launchpad"
    other.mkdir()
    assert remove_stale_launch_dirs() == [str(stale)]
    assert not stale.exists() and alive.exists() and other.exists()
