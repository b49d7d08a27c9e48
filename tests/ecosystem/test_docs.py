"""The documentation site builds from the repository in strict mode (a broken link or reference fails),
its generated pages follow the code, and neither it nor the README leans on files outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import REPO

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr
    return out


def page(site, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_parts_page_lists_every_builtin_part_with_its_parameters(site):
    import mmzoo
    from mmzoo.listing import component_rows

    html = page(site, "parts")
    for kind in ("encoder", "fusion", "head", "dataset"):
        for row in component_rows(kind):
            if row["dist"] == "mmzoo":
                assert f'id="{row["name"]}"' in html or f"<code>{row['name']}</code>" in html, row["name"]
    assert "num_classes" in html and "label_smoothing" in html and "in_channels" in html
    assert mmzoo.list_components("fusion")


def test_run_config_page_has_every_key_of_the_schema(site):
    from mmzoo.train.config import SCHEMA

    html = page(site, "run-config")
    for section in ("model", "data", "optim", "ddp"):
        for key in SCHEMA.fields[section].validator.fields:
            assert f"<code>{key}</code>" in html, f"{section}.{key}"
    for key in SCHEMA.fields:
        assert f"<code>{key}</code>" in html, key


def test_cli_page_has_every_command(site):
    from mmzoo.cli import COMMANDS

    html = page(site, "cli")
    for name in COMMANDS:
        assert f"mmzoo {name}" in html, name


def test_api_page_documents_the_public_names(site):
    html = page(site, "api")
    for name in ("create_model", "create_dataset", "list_models", "list_components", "check_head"):
        assert re.search(rf'id="mmzoo\.(testing\.)?{name}"', html), name


def test_docs_and_readme_stand_alone():
    texts = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "docs").glob("*.md")}
    texts["README.md"] = (REPO / "README.md").read_text(encoding="utf-8")
    for name, text in texts.items():
        assert "../shared" not in text and "shared/DESIGN" not in text, name
