"""``mmzoo new-plugin`` accepts PEP 508 distribution names that give a new importable package, and only those."""

from __future__ import annotations

import ast

import pytest

from mmzoo.errors import MmzooError
from mmzoo.scaffold import plugin_names, write_plugin
from tests.support import run_cli

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


@pytest.mark.parametrize(("name", "module", "short"), [
    ("mmzoo-foo", "mmzoo_foo", "foo"),
    ("Acme.Parts", "acme_parts", "acme-parts"),
    ("mmzoo_Audio-2", "mmzoo_audio_2", "audio-2"),
    ("x", "x", "x"),
])
def test_valid_names(name, module, short):
    names = plugin_names(name)
    assert (names.dist, names.module, names.short) == (name, module, short)


@pytest.mark.parametrize(("name", "said"), [
    ("-foo", "not a valid distribution name"),
    ("foo-", "not a valid distribution name"),
    ("foo bar", "not a valid distribution name"),
    ("foo/bar", "not a valid distribution name"),
    ("../evil", "not a valid distribution name"),
    ("", "not a valid distribution name"),
    ("3d-parts", "'3d_parts', which cannot be imported"),
    ("class", "'class', which cannot be imported"),
    ("MMZOO", "the name of an mmzoo distribution"),
    ("mmzoo_timm", "the name of an mmzoo distribution"),
    ("numpy", "a module named 'numpy' is already importable"),
])
def test_invalid_names_are_refused_with_a_reason(name, said):
    with pytest.raises(MmzooError, match=said.replace("(", r"\(").replace(".", r"\.")):
        plugin_names(name)


def test_the_cli_refuses_a_bad_name_in_one_line(tmp_path):
    done = run_cli("new-plugin", "no good", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: 'no good' is not a valid distribution name")
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


def test_a_non_empty_directory_is_never_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(MmzooError, match="already exists and is not an empty directory"):
        write_plugin("mmzoo-foo", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_the_written_package_declares_its_entry_point_and_imports_no_torch(tmp_path):
    root, files = write_plugin("mmzoo-foo", tmp_path / "pkg")
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "mmzoo-foo"
    assert project["entry-points"]["mmzoo"] == {"foo": "mmzoo_foo"}
    assert any(dep.startswith("mmzoo") for dep in project["dependencies"])
    hooks = ast.parse((root / "mmzoo_foo" / "__init__.py").read_text())
    imported = {alias.name for node in hooks.body if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in hooks.body if isinstance(node, ast.ImportFrom)}
    assert "torch" not in imported
    for path in files:
        text = path.read_text()
        assert "$" not in text, f"unsubstituted placeholder in {path}"
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
