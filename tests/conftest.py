"""Shared fixtures: real plugin distributions installed on sys.path, and a clean plugin state."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

from tests.support import write_distribution

# Tiny test models run an order of magnitude faster on one thread than on two busy ones.
torch.set_num_threads(1)


@pytest.fixture
def fresh_plugins(mmzoo_plugins):
    """Plugin discovery starts over before and after the test: ``mmzoo_plugins`` from mmzoo's pytest plugin."""
    return mmzoo_plugins


@pytest.fixture
def install_plugin(tmp_path, monkeypatch, fresh_plugins):
    """``install_plugin(dist, modules, entry_points)`` puts a plugin distribution on sys.path."""
    added = []

    def install(dist: str, modules: dict[str, str], entry_points: dict[str, str], version: str = "0.1.0") -> Path:
        root = write_distribution(tmp_path / f"site-{dist}", dist, modules, entry_points, version)
        monkeypatch.syspath_prepend(str(root))
        added.append(root)
        importlib.invalidate_caches()
        fresh_plugins.reset()
        return root

    yield install
    for name in [m for m in sys.modules if m.startswith("fixture_")]:
        del sys.modules[name]
    importlib.invalidate_caches()
