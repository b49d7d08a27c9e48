"""The plugin author's and user's workflow, with real pip in a throwaway environment (slow: pip builds).

``mmzoo new-plugin`` writes a package whose own tests pass once ``mmzoo install -e`` installed it;
``mmzoo install`` lists what a plugin adds, ``-U`` updates it, and ``mmzoo uninstall`` removes a plugin
even when importing it would kill the process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.ecosystem.environments import LayeredEnv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return LayeredEnv(tmp_path_factory.mktemp("venv"))


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_new_plugin_installs_and_passes_its_own_tests(env, tmp_path):
    root = tmp_path / "mmzoo-acme"
    ok(env.mmzoo("new-plugin", "mmzoo-acme", "--dir", str(root)))
    out = ok(env.mmzoo("install", "-e", str(root)))
    assert "added mmzoo-acme 0.1.0" in out
    assert "encoders: acme-words" in out and "fusions: acme-max" in out and "heads: acme-classifier" in out
    assert "models: acme-words-max" in out
    listed = {row["name"] for row in json.loads(ok(env.mmzoo("list", "acme-*", "--json")))}
    assert listed == {"acme-words", "acme-max", "acme-classifier", "acme-words-max"}
    tests = env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert re.search(r"\b7 passed\b", tests.stdout), tests.stdout[-2000:]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E,F,W,I,B,UP",
                           "--line-length", "120", "."], cwd=root, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    ok(env.mmzoo("uninstall", "-y", "mmzoo-acme"))
    assert "acme-words" not in ok(env.mmzoo("list", "--kind", "encoder"))


def test_install_upgrade_and_uninstall_a_plugin_that_kills_its_importer(env, tmp_path):
    source = tmp_path / "mmzoo-doomed"
    ok(env.mmzoo("new-plugin", "mmzoo-doomed", "--dir", str(source)))
    out = ok(env.mmzoo("install", str(source)))
    assert "added mmzoo-doomed 0.1.0" in out and "encoders: doomed-words" in out

    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    out = ok(env.mmzoo("install", "-U", str(source)))
    assert "updated mmzoo-doomed 0.1.0 -> 0.2.0" in out

    # break the installed copy: importing it now ends the process, as a crashing extension would
    installed = env.site / "mmzoo_doomed" / "__init__.py"
    installed.write_text("import os\nos._exit(3)\n")
    assert env.mmzoo("list").returncode == 3, "the broken plugin should kill a listing"
    done = env.mmzoo("uninstall", "-y", "mmzoo-doomed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully uninstalled mmzoo-doomed" in done.stdout
    assert not installed.exists()
    assert "doomed" not in ok(env.mmzoo("list"))


def test_install_reports_a_plugin_that_fails_to_load(env, tmp_path):
    source = tmp_path / "mmzoo-flaky"
    ok(env.mmzoo("new-plugin", "mmzoo-flaky", "--dir", str(source)))
    init = source / "mmzoo_flaky" / "__init__.py"
    init.write_text(init.read_text() + "\nraise RuntimeError('flaky cannot start')\n")
    done = env.mmzoo("install", str(source))
    assert done.returncode == 1
    assert "added mmzoo-flaky 0.1.0, but it failed to load" in done.stdout and "flaky cannot start" in done.stdout
    ok(env.mmzoo("uninstall", "-y", "mmzoo-flaky"))


def test_uninstall_refuses_mmzoo_itself(env):
    done = env.mmzoo("uninstall", "-y", "MMZoo")
    assert done.returncode == 2 and "not mmzoo itself" in done.stderr and "Traceback" not in done.stderr
