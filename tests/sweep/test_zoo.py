"""The zoo's results table: ``make zoo``'s own command, on a reduced grid (one seed, two steps, a few
examples), regenerates the files the repository commits, with the same structure."""

from __future__ import annotations

import csv
import io
import re
import shlex

import pytest

import mmzoo
from tests.support import REPO, run_cli

ZOO = REPO / "zoo"
REDUCED = ["--grid", "seed=[0]", "--set", "optim.steps=2", "--set", "optim.warmup_steps=0", "--set", "eval_every=2",
           "--set", "save_every=2", "--set", "data.train.max_examples=64", "--set", "data.eval.max_examples=32"]
DATASETS = {"av-digits", "digit-captions", "sklearn-digits"}


def make_zoo_command() -> list[str]:
    """The arguments ``make zoo`` gives ``mmzoo`` (the Makefile is the one place the command lives)."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^zoo:.*\n\t\$\(VENV\)/bin/mmzoo (.+)$", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no zoo target running mmzoo"
    return shlex.split(recipe.group(1))


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def test_the_committed_table_covers_every_recipe_over_three_seeds():
    recipes = sorted(p.stem for p in (ZOO / "recipes").glob("*/*.yaml"))
    columns, rows = read_csv((ZOO / "results.csv").read_text())
    assert sorted(row["composition"] for row in rows) == recipes
    assert {row["dataset"] for row in rows} == DATASETS
    assert all(row["runs"] == "3" and row["failed"] == "0" for row in rows), rows
    markdown = (ZOO / "results.md").read_text()
    assert markdown.startswith("# mmzoo zoo: results on offline data\n")
    assert "Produced by `mmzoo sweep zoo/sweep.yaml --parallel 2` on " in markdown and "Machine: " in markdown
    assert "mean ± std over seed in [0, 1, 2]" in markdown


@pytest.mark.slow
def test_make_zoo_regenerates_its_files_on_a_reduced_grid(tmp_path):
    command = make_zoo_command()
    assert command[:2] == ["sweep", "zoo/sweep.yaml"]
    out = tmp_path / "zoo"
    done = run_cli(*command, *REDUCED, "--output-dir", str(out), "--results-dir", str(out), cwd=REPO, timeout=1800,
                   env={"MMZOO_FEATURE_CACHE": str(tmp_path / "features"), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr

    recipes = sorted(p.stem for p in (ZOO / "recipes").glob("*/*.yaml"))
    columns, rows = read_csv((out / "results.csv").read_text())
    assert sorted(row["composition"] for row in rows) == recipes
    assert {row["dataset"] for row in rows} == DATASETS
    assert all(row["runs"] == "1" and row["failed"] == "0" and int(row["parameters"]) > 0 for row in rows)
    committed_columns, _ = read_csv((ZOO / "results.csv").read_text())
    assert columns == committed_columns  # the committed table is this code's output

    markdown = (out / "results.md").read_text()
    assert markdown.startswith("# mmzoo zoo: results on offline data\n")
    assert f"with mmzoo {mmzoo.__version__}." in markdown and "Machine: " in markdown
    assert "20 of 20 points finished; mean ± std over seed in [0]." in markdown
    for dataset in DATASETS:
        assert re.search(rf"^## {dataset}\b", markdown, re.MULTILINE), dataset
    assert markdown.count("**") >= 2 * len(DATASETS)  # the best of each table in bold
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
