"""#15 point 9: a stopped rank fails the others after ``distributed.timeout`` instead of stalling them
for torch's default 30 minutes, and the ranks stop when their launcher is killed (2 gloo ranks on CPU)."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

import pytest

from mmzoo.train import checkpoint as ckpt
from mmzoo.train.distributed import remove_stale_launch_dirs
from mmzoo.train.metrics import read_metrics
from mmzoo.train.rundir import LOCK_OWNER_FILE
from mmzoo.train.runlock import RunDirLock
from tests.train.helpers import popen_cli, toy_config, write_yaml

pytestmark = [pytest.mark.distributed, pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                                          reason="reads process states from /proc")]


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(predicate, what: str, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the launcher ended before {what}: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def logged_step(metrics: Path, step: int) -> bool:
    return metrics.exists() and any(r.get("step", 0) >= step for r in read_metrics(metrics))


def test_a_stopped_rank_fails_the_other_after_the_collective_timeout(toy_site, tmp_path):
    params = {"size": 48, "stop_rank": 1, "stop_after": 14}  # rank 1 stops inside its 4th batch
    config = toy_config(tmp_path / "run", optim__steps=50, data__batch_size=4, distributed={"timeout": 5},
                        data__train={"dataset": "toy-blobs", "params": params})
    path = write_yaml(tmp_path / "run.yaml", config)
    proc = popen_cli(["train", str(path), "--nproc", "2"], toy_site, tmp_path, start_new_session=True)
    try:
        wait_until(lambda: len(children(proc.pid)) >= 2, "the ranks to start", 120, proc)
        ranks = children(proc.pid)
        _, stderr = proc.communicate(timeout=240)  # torch's default would hold rank 0 for 30 minutes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 2, stderr
    assert re.search(r"error: rank 0: the other ranks did not answer within distributed.timeout \(5 s\) after step "
                     r"[1-3]: a rank stopped, hung or died \(", stderr), stderr
    assert "a rank stopped, hung or died" in stderr and "resume: auto" in stderr
    assert "Traceback" not in stderr and stderr.count("error:") == 1, stderr
    wait_until(lambda: not any(running(pid) for pid in ranks), "the stopped rank to be ended", 120)


def test_killing_the_launcher_stops_the_ranks(toy_site, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    params = {"size": 48, "delay": 0.02}
    config = toy_config(tmp_path / "run", optim__steps=2000, save_every=100000,
                        data__train={"dataset": "toy-blobs", "params": params})
    path = write_yaml(tmp_path / "run.yaml", config)
    proc = popen_cli(["train", str(path), "--nproc", "2"], toy_site, tmp_path, start_new_session=True,
                     TMPDIR=str(temp))
    try:
        wait_until(lambda: logged_step(tmp_path / "run" / "metrics.jsonl", 2), "the ranks to train", 120, proc)
        ranks = children(proc.pid)
        assert len(ranks) == 2
        # the launcher holds the run directory's lock for its ranks (rank 0 did not wait for it)
        assert json.loads((tmp_path / "run" / LOCK_OWNER_FILE).read_text())["pid"] == proc.pid
        proc.kill()  # SIGKILL: the launcher can tell nobody
        _, stderr = proc.communicate()  # the ranks hold its stderr open until they end
        wait_until(lambda: not any(running(pid) for pid in ranks), "the ranks to stop", 120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, if the test failed
        except ProcessLookupError:
            pass
    # the ranks took SIGTERM: they stopped after a step, together, and rank 0 checkpointed it
    with RunDirLock(tmp_path / "run"):  # its holder died: the lock went with it
        pass
    latest = ckpt.CheckpointManager(tmp_path / "run" / "checkpoints", 9).steps()[-1][0]
    assert latest < 2000 and f"stopped by SIGTERM after step {latest}/2000" in stderr, stderr
    # the launcher's folder outlived it; the next launch removes it
    left = list(temp.glob(f"mmzoo-launch-{proc.pid}-*"))
    assert len(left) == 1
    before = tempfile.tempdir
    tempfile.tempdir = str(temp)
    try:
        assert remove_stale_launch_dirs() == [str(left[0])]
    finally:
        tempfile.tempdir = before
