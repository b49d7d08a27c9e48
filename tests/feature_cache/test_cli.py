"""``mmzoo cache list|clear``: the size report and deleting entries by pattern, in a fresh process."""

from __future__ import annotations

import json

from mmzoo.feature_cache.store import build_entry
from tests.feature_cache.test_store import KEY, features, filler
from tests.support import run_cli


def entries(root):
    """Entry names; the empty lock files stay (deleting a lock another process may hold would be a race)."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def cache_cli(root, *args):
    done = run_cli("cache", *args, env={"MMZOO_FEATURE_CACHE": str(root)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_reports_sizes_and_clear_removes_what_the_patterns_name(tmp_path):
    root = tmp_path / "features"
    assert cache_cli(root, "list").startswith(f"feature cache {root}: 0 entries, 0 B")
    for name, seed in [("image-a--train", 0), ("image-a--test", 1), ("text-b--train", 2)]:
        build_entry(name, {**KEY, "name": name}, filler([features(seed)]), tokens=name.startswith("text"), root=root)
    (root / "broken").mkdir()  # no entry.json: listed as damaged, removable

    listing = cache_cli(root, "list").splitlines()
    assert listing[0].startswith(f"feature cache {root}: 4 entries, ")
    assert any(line.split()[:3] == ["image-a--train", "5", "examples"] for line in listing[1:])
    assert any(line.split()[:2] == ["broken", "damaged"] for line in listing[1:])
    rows = {row["name"]: row for row in json.loads(cache_cli(root, "list", "--json"))}
    assert rows["text-b--train"]["tokens"] is True and rows["text-b--train"]["key"]["name"] == "text-b--train"
    assert rows["text-b--train"]["bytes"] > rows["image-a--train"]["bytes"] > 0
    assert sorted(row["name"] for row in json.loads(cache_cli(root, "list", "image-*", "--json"))) == [
        "image-a--test", "image-a--train"]

    assert cache_cli(root, "clear", "image-*").startswith(f"removed 2 entries from {root}, ")
    assert entries(root) == ["broken", "text-b--train"]
    assert cache_cli(root, "clear").startswith(f"removed 2 entries from {root}, ")
    assert entries(root) == []
