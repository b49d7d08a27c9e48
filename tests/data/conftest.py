"""Fixtures for dataset tests: an isolated mmzoo cache (the small speech bank is in tests.data.support)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One cache directory for the whole session, so generated data is built once."""
    return tmp_path_factory.mktemp("mmzoo-cache")


@pytest.fixture(autouse=True)
def isolated_cache(shared_cache, monkeypatch):
    """Every dataset test writes into the session's temporary cache, never ~/.cache/mmzoo."""
    monkeypatch.setenv("MMZOO_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache for tests that watch a build happen."""
    root = tmp_path / "cache"
    monkeypatch.setenv("MMZOO_CACHE", str(root))
    return root
