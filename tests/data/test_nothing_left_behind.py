"""Killed builders leave nothing behind, and a damaged cache entry is rebuilt rather than an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mmzoo.data.cache import build_once, load_arrays, read_meta

REPO = Path(__file__).resolve().parents[2]

SYNTHESIZE = textwrap.dedent("""
    from mmzoo.data.speech_bank import bank_params, synthesize_bank
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    synthesize_bank(bank_params(words, 16000, ["en+m1", "en-us+f3", "en+m3"], [120, 170, 220], [30, 60, 90]))
""")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="watches the process tree through /proc")
@pytest.mark.timeout(300)
def test_a_speech_builder_killed_mid_synthesis_leaves_no_temporary_folder(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)}
    builder = subprocess.Popen([sys.executable, "-c", SYNTHESIZE], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not _children(builder.pid):  # the synthesizer process has started: it is mid-build
            assert builder.poll() is None, builder.stderr.read().decode()
            assert time.monotonic() < deadline, "the synthesizer never started"
            time.sleep(0.02)
    finally:
        os.killpg(builder.pid, signal.SIGKILL)  # the builder and the synthesizer, as kill -9 would
        builder.wait()
    time.sleep(0.2)
    assert [p.name for p in temp.iterdir()] == []


def test_an_entry_without_its_meta_json_is_rebuilt(fresh_cache):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(4.0)}

    entry = build_once("demo", 1, {"n": 4}, build)
    (entry / "meta.json").unlink()  # as a copy cut short, or a hand-made cleanup, would leave it
    again = build_once("demo", 1, {"n": 4}, build)
    assert again == entry and calls == [1, 1]
    assert read_meta(again)["params"] == {"n": 4}
    assert load_arrays(again, ("x",))["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert sorted(p.name for p in again.parent.iterdir() if p.name.startswith("demo-")) == [
        entry.name, entry.name + ".lock"
    ]


def test_an_entry_that_is_a_stray_file_is_rebuilt(fresh_cache):
    entry = build_once("demo", 1, {"n": 1}, lambda: {"x": np.zeros(1)})
    for path in entry.iterdir():
        path.unlink()
    entry.rmdir()
    entry.write_text("not a directory")
    assert build_once("demo", 1, {"n": 1}, lambda: {"x": np.ones(1)}) == entry
    assert load_arrays(entry, ("x",))["x"].tolist() == [1.0]
