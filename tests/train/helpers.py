"""Shared helpers for the trainer tests: a tiny model spec, configs and subprocess runs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

TINY_SPEC = {
    "encoders": {
        "vec": {"type": "mlp", "in_dim": 8, "hidden_dims": [16], "output_dim": 16},
        "img": {"type": "cnn", "in_channels": 1, "channels": [8], "output_dim": 16, "image_size": 8},
    },
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 3},
}


def toy_config(output_dir: Path | str, **changes: Any) -> dict[str, Any]:
    """A raw run config on the toy datasets; ``changes`` replace top-level keys, and
    ``optim__lr=...`` / ``data__batch_size=...`` replace nested ones."""
    config: dict[str, Any] = {
        "model": copy.deepcopy(TINY_SPEC),
        "data": {
            "train": {"dataset": "toy-blobs", "params": {"size": 48}},
            "eval": {"dataset": "toy-blobs", "params": {"size": 20}},
            "batch_size": 8,
        },
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "steps": 6},
        "output_dir": str(output_dir),
        "log_every": 1,
    }
    for key, value in changes.items():
        node = config
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cli_env(site: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that finds the toy plugin and uses one thread per process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def run_cli(
    args: list[str], site: Path, cwd: Path, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmzoo", *args],
        capture_output=True,
        text=True,
        env=cli_env(site, **env),
        cwd=cwd,
        timeout=timeout,
    )


def popen_cli(
    args: list[str], site: Path, cwd: Path, start_new_session: bool = False, **env: str
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mmzoo", *args],
        start_new_session=start_new_session,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(site, **env),
        cwd=cwd,
    )


def load_tensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def run_cli_on_a_terminal(args: list[str], site: Path, cwd: Path, timeout: float = 240) -> tuple[int, str, str]:
    """``python -m mmzoo ARGS`` with stderr on a pseudo-terminal; returns (exit status, stdout, what the
    terminal showed)."""
    import fcntl
    import pty
    import struct
    import termios
    import time

    from tests.support import read_terminal

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal's size
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mmzoo", *args], stdout=subprocess.PIPE, stderr=follower,
                                env=cli_env(site), cwd=cwd)
        os.close(follower)
        deadline = time.monotonic() + timeout
        shown = read_terminal(leader, proc, deadline)
        stdout = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
        return proc.returncode, stdout.decode(), shown.decode(errors="replace")
    finally:
        os.close(leader)
