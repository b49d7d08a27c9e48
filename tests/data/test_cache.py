"""The build-once cache: reuse, versioned names, atomicity, and concurrent builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mmzoo.data.cache import build_once, entry_name, load_arrays, read_meta
from mmzoo.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


def test_entry_name_is_versioned_and_depends_on_params():
    a = entry_name("bank", 1, {"rate": 16000, "voices": ["a", "b"]})
    assert a.startswith("bank-v1-") and len(a) == len("bank-v1-") + 12
    assert a == entry_name("bank", 1, {"voices": ["a", "b"], "rate": 16000})  # key order does not matter
    assert a != entry_name("bank", 2, {"rate": 16000, "voices": ["a", "b"]})
    assert a != entry_name("bank", 1, {"rate": 22050, "voices": ["a", "b"]})


def test_build_once_builds_then_reuses(fresh_cache):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(6, dtype=np.int16).reshape(2, 3)}

    first = build_once("demo", 1, {"n": 6}, build)
    second = build_once("demo", 1, {"n": 6}, build)
    assert first == second and calls == [1]
    assert first.parent == fresh_cache / "datasets"
    arrays = load_arrays(first, ("x",))
    assert isinstance(arrays["x"], np.memmap) and arrays["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    meta = read_meta(first)
    assert meta["params"] == {"n": 6} and meta["arrays"]["x"] == {"shape": [2, 3], "dtype": "int16"}
    build_once("demo", 1, {"n": 7}, build)
    assert calls == [1, 1]


def test_failed_build_leaves_nothing_behind(fresh_cache):
    def broken():
        raise RuntimeError("synthesizer crashed")

    with pytest.raises(RuntimeError, match="synthesizer crashed"):
        build_once("demo", 1, {}, broken)
    leftovers = [p.name for p in (fresh_cache / "datasets").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    path = build_once("demo", 1, {}, lambda: {"x": np.ones(3)})
    assert load_arrays(path, ("x",))["x"].tolist() == [1.0, 1.0, 1.0]


def test_stale_temporary_directory_of_a_killed_builder_is_removed(fresh_cache):
    name = entry_name("demo", 1, {})
    stale = fresh_cache / "datasets" / f"{name}.tmp-dead"
    stale.mkdir(parents=True)
    (stale / "x.npy").write_bytes(b"half written")
    build_once("demo", 1, {}, lambda: {"x": np.zeros(2)})
    assert not stale.exists()


def test_unreadable_cache_file_says_how_to_recover(fresh_cache):
    path = build_once("demo", 1, {}, lambda: {"x": np.zeros(2)})
    (path / "x.npy").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=f"delete {path} to rebuild it"):
        load_arrays(path, ("x",))


_BUILDER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from mmzoo.data.cache import build_once, load_arrays

    log = sys.argv[1]
    def build():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        return {"x": np.arange(1000, dtype=np.float32) * 0.5}

    path = build_once("race", 1, {"k": 1}, build)
    print(path, float(load_arrays(path, ("x",))["x"].sum()))
    """
)


def test_concurrent_builders_build_once_and_agree(fresh_cache, tmp_path):
    log = tmp_path / "builds.log"
    env = {**os.environ, "MMZOO_CACHE": str(fresh_cache), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", _BUILDER, str(log)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(outputs)) == 1 and outputs[0].endswith(str(float(np.arange(1000).sum() * 0.5)))
    assert len(log.read_text().split()) == 1  # exactly one process built
    entries = sorted(p.name for p in (fresh_cache / "datasets").iterdir())
    assert len(entries) == 2 and entries[1].endswith(".lock")  # the entry and its lock, no temporaries
    assert json.loads((fresh_cache / "datasets" / entries[0] / "meta.json").read_text())["params"] == {"k": 1}
