"""Fixtures for dataset tests: an isolated mmzoo cache, and a small speech bank to keep tests fast."""

from __future__ import annotations

import pytest

# A bank of 2 voices x 2 rates x 1 pitch x 10 words: synthesized in well under a second.
SMALL_BANK = {"voices": ["en+m1", "en-us+f3"], "rates": [150, 220], "pitches": [50]}


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
