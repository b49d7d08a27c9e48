"""The first-party plugins are ordinary installed distributions using only mmzoo's public route."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
DISTS = {"mmzoo-timm": ("timm", "mmzoo_timm"), "mmzoo-transformers": ("transformers", "mmzoo_transformers")}
# What a third-party plugin may import from mmzoo (DESIGN.md's public names).
PUBLIC = {"mmzoo", "mmzoo.errors", "mmzoo.outputs", "mmzoo.hub.settings"}  # what plugin authors may import
HEAVY = ("torch", "timm", "transformers")


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_installed_with_the_declared_entry_point(dist):
    name, module = DISTS[dist]
    pyproject = tomllib.loads((PLUGINS / dist / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == dist
    assert pyproject["project"]["entry-points"]["mmzoo"] == {name: module}
    assert any(re.match(r"mmzoo\s*(>=|$)", dep) for dep in pyproject["project"]["dependencies"])
    installed = {ep.name: ep.value for ep in metadata.distribution(dist).entry_points if ep.group == "mmzoo"}
    assert installed == {name: module}
    assert metadata.version(dist) == pyproject["project"]["version"] == __import__(module).__version__


def test_listed_by_mmzoo_plugins_with_versions_and_parts():
    out = subprocess.run([sys.executable, "-m", "mmzoo", "plugins", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    plugins = {p["dist"]: p for p in json.loads(out.stdout)}
    for dist in DISTS:
        assert plugins[dist]["status"] == "loaded", plugins[dist]
        assert plugins[dist]["version"] == metadata.version(dist)
    assert set(plugins["mmzoo-timm"]["parts"]["encoder"]) == {"timm/*", "efficientnet-lite0"}
    assert set(plugins["mmzoo-transformers"]["parts"]["encoder"]) == {"hf/*", "minilm"}


@pytest.mark.parametrize("module", ["mmzoo_timm", "mmzoo_transformers"])
def test_importing_a_plugin_module_imports_no_heavy_library(module):
    loaded = _python(f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded.strip() == "[]"


def test_listing_parts_imports_no_heavy_library_and_patterns_reach_into_families():
    code = (f"import sys, json, mmzoo\n"
            f"names = mmzoo.list_components('encoder')\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            f"vits = mmzoo.list_components('encoder', 'timm/vit_tiny_patch16*')\n"
            f"print(json.dumps([names, heavy, vits]))")
    names, heavy, vits = json.loads(_python(code))
    assert {"timm/*", "hf/*", "efficientnet-lite0", "minilm"} <= set(names)
    assert heavy == []
    assert "timm/vit_tiny_patch16_224" in vits and all(v.startswith("timm/vit_tiny_patch16") for v in vits)


def test_hf_family_members_are_the_models_in_the_local_cache(empty_hub_cache):
    from mmzoo_transformers.members import list_cached_models

    assert list_cached_models() == []
    snapshot = empty_hub_cache / "models--org--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (empty_hub_cache / "models--org--tiny" / "refs").mkdir()
    (empty_hub_cache / "models--org--tiny" / "refs" / "main").write_text("0" * 40)
    assert list_cached_models() == ["org/tiny"]


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_plugins_import_only_public_mmzoo_modules(dist):
    package = PLUGINS / dist / DISTS[dist][1]
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mmzoo":
                assert node.module in PUBLIC, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "mmzoo":
                        assert alias.name in PUBLIC, f"{path.name} imports {alias.name}"
        if path.name == "__init__.py":
            top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            names = {(n.module if isinstance(n, ast.ImportFrom) else n.names[0].name) or "" for n in top}
            assert not any(n.split(".")[0] in HEAVY for n in names), f"{path} imports {names} at top level"


def test_parts_are_reachable_by_qualified_name():
    from mmzoo.plugins import get_registry

    registry = get_registry()
    assert registry.resolve("encoder", "mmzoo-timm:efficientnet-lite0").dist == "mmzoo-timm"
    assert registry.resolve("encoder", "mmzoo-transformers:minilm").dist == "mmzoo-transformers"
    member = registry.resolve("encoder", "timm/resnet18")
    assert member.dist == "mmzoo-timm" and member.member == "resnet18" and member.modalities() == ("image",)
    assert registry.resolve("encoder", "hf/org/model").member == "org/model"
