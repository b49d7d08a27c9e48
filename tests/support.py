"""Helpers tests share: real plugin distributions on disk, and fresh interpreters of this venv."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_distribution(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str],
                       version: str = "0.1.0") -> Path:
    """Lay out an installed distribution (modules + ``*.dist-info`` with entry points) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        path = root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mmzoo]\n{lines}\n", encoding="utf-8")
    return root


def run_python(code: str, *, env: dict | None = None, pythonpath: list[Path] = (), timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), full_env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)


def run_cli(*args: str, env: dict | None = None, pythonpath: list[Path] = (), timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m mmzoo ARGS`` in a fresh interpreter; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), full_env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "mmzoo", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)


def read_terminal(leader: int, proc: subprocess.Popen, deadline: float, poll: float = 0.2) -> bytes:
    """What a child shows on the pseudo-terminal whose leader end is ``leader``: read until the child
    closes it, the child exits with nothing left to read, or ``time.monotonic()`` passes ``deadline``."""
    import select
    import time

    shown = bytearray()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], poll)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    return bytes(shown)


@contextmanager
def one_intraop_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block (tiny models: one thread beats two fighting over
    busy cores), the previous count restored after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
