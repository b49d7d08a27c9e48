"""Fixtures for Hub tests: a local Hub server on a free port, and a Hub client pointed at it
(see :mod:`tests.hub.support` for the helpers they use)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmzoo.testing.hub_server import HubServer
from tests.hub.support import READ_TOKEN, REPO_ROOT, TOKEN, point_client_at


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A running local Hub that accepts TOKEN (write) and READ_TOKEN, users of the organisation ``org``;
    the client is pointed at it with TOKEN."""
    server = HubServer(tokens={TOKEN: "tester", READ_TOKEN: "reader"}, read_only_tokens={READ_TOKEN},
                       orgs={"org": ["tester", "reader"]})
    server.start()
    server.env = point_client_at(monkeypatch, server.url, tmp_path / "hf_home", TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_python(tmp_path: Path):
    """Run a Python snippet (or ``-m module args``) in a fresh interpreter with the current environment."""

    def run(*args: str, env: dict | None = None, check: bool = True, timeout: float = 300):
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full_env.get("PYTHONPATH")]))
        proc = subprocess.run(
            [sys.executable, *args], env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    return run
