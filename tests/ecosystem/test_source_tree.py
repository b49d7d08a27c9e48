"""A checkout on PYTHONPATH, never installed, still has the core's builtin parts, datasets and models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support import REPO

CHECK = """
import json, sys
from importlib import metadata
import mmzoo
names = [d.metadata["Name"] for d in metadata.distributions()]
print(json.dumps({
    "dists": [n for n in names if n and n.lower().startswith("mmzoo")],
    "file": mmzoo.__file__,
    "version": mmzoo.__version__,
    "encoders": mmzoo.list_components("encoder"),
    "fusions": mmzoo.list_components("fusion"),
    "datasets": mmzoo.list_components("dataset"),
    "models": mmzoo.list_models(),
}))
"""


def site_without_mmzoo(root: Path) -> Path:
    """A directory of links to this venv's site-packages entries, less every mmzoo distribution."""
    site = root / "site"
    site.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if "mmzoo" in name or name.endswith(".pth"):
            continue
        (site / entry.name).symlink_to(entry)
    return site


def test_builtin_parts_register_from_an_uninstalled_source_tree(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "mmzoo", checkout / "mmzoo", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    site = site_without_mmzoo(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMZOO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), str(site)])
    # -S: no site-packages of this venv (where mmzoo is installed); -I is avoided since it drops PYTHONPATH
    done = subprocess.run([sys.executable, "-S", "-c", CHECK], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["dists"] == [], "the test must see no installed mmzoo metadata"
    assert Path(found["file"]).is_relative_to(checkout)
    assert found["version"] == "0+unknown"
    assert {"mlp", "cnn", "byte-gru", "mel-cnn"} <= set(found["encoders"])
    assert {"concat", "gated", "cross-attention"} <= set(found["fusions"])
    assert {"av-digits", "sklearn-digits"} <= set(found["datasets"])
    assert "digits-av-gated" in found["models"]
    shown = subprocess.run([sys.executable, "-S", "-m", "mmzoo", "plugins", "--json"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    core = [p for p in json.loads(shown.stdout) if p["dist"] == "mmzoo"]
    assert core and core[0]["status"] == "loaded"


def test_the_builtin_list_matches_the_declared_entry_points():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from mmzoo.plugins import BUILTIN_ENTRY_POINTS

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["mmzoo"]
    assert declared == BUILTIN_ENTRY_POINTS
