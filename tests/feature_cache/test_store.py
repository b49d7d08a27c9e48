"""Feature cache entries on disk: exact round trips, atomic builds, damaged entries rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmzoo.feature_cache.store import (
    ENTRY_FILE,
    TEMP_MARK,
    FeatureEntry,
    build_entry,
    features_root,
    list_entries,
    open_if_sound,
    remove_entry,
)

KEY = {"what": "a test entry"}


def features(seed: int, batch: int = 5, dim: int = 4, length: int = 6):
    rng = np.random.default_rng(seed)
    pooled = rng.standard_normal((batch, dim)).astype(np.float32)
    tokens = rng.standard_normal((batch, length, dim)).astype(np.float32)
    lengths = rng.integers(1, length + 1, batch)
    mask = np.arange(length)[None, :] < lengths[:, None]
    mask[0, 0] = False  # a masked position before real tokens is kept, only trailing padding is dropped
    return pooled, tokens, mask


def filler(batches, targets=None, calls=None):
    def fill(writer):
        if calls is not None:
            calls.append(1)
        for pooled, tokens, mask in batches:
            writer.add(pooled, tokens if writer.tokens else None, mask if writer.tokens else None)
        return (None if targets is None else np.asarray(targets)), targets is None

    return fill


def test_rows_tokens_and_targets_read_back_exactly(tmp_path):
    batches = [features(0), features(1, batch=3)]
    targets = list(range(8))
    entry, built = build_entry("e", KEY, filler(batches, targets), tokens=True, root=tmp_path, shard_bytes=200)
    assert built and entry.examples == 8 and len(entry.meta["shards"]) > 1  # small shards: several files
    rows = [(p[i], t[i], m[i]) for p, t, m in batches for i in range(len(p))]
    for index, (pooled, tokens, mask) in enumerate(rows):
        row = entry.row(index)
        real = int(np.flatnonzero(mask).max()) + 1 if mask.any() else 0
        assert np.array_equal(row.pooled, pooled)
        assert np.array_equal(row.tokens, tokens[:real]) and np.array_equal(row.mask, mask[:real])
        assert entry.row(index, tokens=False).tokens is None
        assert entry.target(index) == targets[index] and type(entry.target(index)) is int
    again, built = build_entry("e", KEY, filler(batches, targets, calls := []), tokens=True, root=tmp_path)
    assert not built and calls == [] and again.meta["key"] == KEY


def test_entries_survive_pickling_into_workers(tmp_path):
    import pickle

    entry, _ = build_entry("e", KEY, filler([features(0)]), tokens=False, root=tmp_path)
    entry.row(0)  # memory maps opened here are not pickled; the copy opens its own
    copy = pickle.loads(pickle.dumps(entry))
    assert np.array_equal(copy.row(3).pooled, entry.row(3).pooled)


@pytest.mark.parametrize(
    "damage",
    ["truncate a shard", "flip bytes in a shard", "delete a shard", "garbage entry.json", "no entry.json"],
)
def test_a_damaged_entry_is_detected_and_rebuilt(tmp_path, damage):
    build_entry("e", KEY, filler([features(0)], [1, 2, 3, 4, 5]), tokens=True, root=tmp_path)
    entry_dir = tmp_path / "e"
    shard = entry_dir / "tokens-00000.npy"
    if damage == "truncate a shard":
        shard.write_bytes(shard.read_bytes()[:-7])
    elif damage == "flip bytes in a shard":
        data = bytearray(shard.read_bytes())
        data[-5:] = bytes(255 - b for b in data[-5:])
        shard.write_bytes(bytes(data))
    elif damage == "delete a shard":
        shard.unlink()
    elif damage == "garbage entry.json":
        (entry_dir / ENTRY_FILE).write_text("{not json")
    else:
        (entry_dir / ENTRY_FILE).unlink()
    assert open_if_sound(entry_dir) is None
    calls = []
    entry, built = build_entry("e", KEY, filler([features(0)], [1, 2, 3, 4, 5], calls), tokens=True, root=tmp_path)
    assert built and calls == [1]
    assert np.array_equal(entry.row(2).pooled, features(0)[0][2])
    assert FeatureEntry.open(entry_dir) is not None  # checksums agree again


def test_a_failed_build_leaves_nothing_half_written(tmp_path):
    def fill(writer):
        writer.add(*features(0))
        raise RuntimeError("the encoder broke halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        build_entry("e", KEY, fill, tokens=True, root=tmp_path)
    assert not (tmp_path / "e").exists()
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_a_dead_builders_temporary_directory_is_removed_by_the_next_build(tmp_path):
    leftover = tmp_path / f"e{TEMP_MARK}abc123"
    leftover.mkdir()
    (leftover / "pooled-00000.npy").write_bytes(b"half")
    entry, built = build_entry("e", KEY, filler([features(0)]), tokens=False, root=tmp_path)
    assert built and not leftover.exists() and entry.examples == 5


def test_listing_and_removing_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_FEATURE_CACHE", str(tmp_path / "features"))
    root = features_root()
    assert root == tmp_path / "features"
    build_entry("a", KEY, filler([features(0)]), tokens=False)
    build_entry("b", KEY, filler([features(1)]), tokens=True)
    (root / "c").mkdir()  # damaged: no entry.json
    listed = {e.name: e for e in list_entries()}
    assert {n: e.state for n, e in listed.items()} == {"a": "ok", "b": "ok", "c": "damaged"}
    assert listed["b"].bytes > listed["a"].bytes > 0
    assert listed["a"].meta["examples"] == 5
    assert remove_entry(listed["a"].path) and not (root / "a").exists()
    assert json.loads((root / "b" / ENTRY_FILE).read_text())["tokens"] is True
