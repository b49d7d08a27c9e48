"""Fixtures: the toy dataset plugin (a real distribution on sys.path) and one CPU thread per test."""

from __future__ import annotations

import pytest

from tests.support import write_distribution
from tests.train import toy_plugin


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory):
    """A site directory holding the ``mmzoo-train-toys`` plugin distribution (for subprocesses too)."""
    root = tmp_path_factory.mktemp("toy-site")
    return write_distribution(root, toy_plugin.DIST, toy_plugin.MODULES, toy_plugin.ENTRY_POINTS)


@pytest.fixture
def toys(toy_site, monkeypatch, fresh_plugins):
    """The toy plugin loaded in this process."""
    monkeypatch.syspath_prepend(str(toy_site))
    fresh_plugins.reset()
    yield toy_site
    fresh_plugins.reset()


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine OpenMP spinning makes tiny models crawl, and the
    exactness tests compare runs that must reduce in the same order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
