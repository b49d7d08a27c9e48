"""The command line: listings, info, plugins, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import sys

import pytest

from mmzoo.cli import main
from tests.core.plugin_sources import BASE_PARTS, BASE_PLUGIN
from tests.support import run_cli, run_python, write_distribution


def test_list_shows_every_kind_with_its_distribution(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("encoders", "fusions", "heads", "models"):
        assert section in out
    assert "gated" in out and "digits-av-gated" in out


def test_list_pattern_kind_json(capsys):
    assert main(["list", "gated*", "--kind", "fusion", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["gated"] and rows[0]["dist"] == "mmzoo" and rows[0]["kind"] == "fusion"
    assert main(["list", "digits-av-*", "--kind", "model", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"digits-av-gated", "digits-av-concat"}
    assert all(r["kind"] == "model" and r["fusion"] for r in rows)


def test_list_nothing_matches_exits_nonzero(capsys):
    assert main(["list", "zzz-nothing*"]) == 1
    assert "nothing matches" in capsys.readouterr().out


def test_info_model_shows_parts_parameters_and_providers(capsys):
    assert main(["info", "digits-av-gated", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [p["part"] for p in info["parts"]] == ["encoders.image", "encoders.audio", "fusion", "head"]
    assert info["parameters"] == sum(p["parameters"] for p in info["parts"]) > 0
    assert info["requires"] == {"mmzoo": __import__("mmzoo").__version__}
    assert main(["info", "digits-av-gated"]) == 0
    assert "encoders.audio" in capsys.readouterr().out


def test_info_part(capsys):
    assert main(["info", "gated"]) == 0
    assert "fusion gated" in capsys.readouterr().out


def test_user_errors_print_one_line_without_traceback():
    result = run_cli("info", "digits-av-gatd")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown model 'digits-av-gatd'. Did you mean 'digits-av-gated'? "
        "List models with: mmzoo list --kind model"
    ]


def test_plugins_json_reports_versions_parts_and_failures(tmp_path):
    site = tmp_path / "site"
    write_distribution(site, "mmzoo-fixture-base", {"fixture_base": BASE_PLUGIN, "fixture_base_parts": BASE_PARTS},
                       {"base": "fixture_base"}, version="1.2.3")
    write_distribution(site, "mmzoo-broken", {"fixture_broken": "import nope_nope\n"}, {"b": "fixture_broken"})
    result = run_cli("plugins", "--json", pythonpath=[site])
    assert result.returncode == 0, result.stderr
    records = {r["dist"]: r for r in json.loads(result.stdout)}
    assert records["mmzoo-fixture-base"]["version"] == "1.2.3"
    assert records["mmzoo-fixture-base"]["status"] == "loaded"
    assert "fixture-vector" in records["mmzoo-fixture-base"]["parts"]["encoder"]
    assert records["mmzoo-broken"]["status"] == "failed" and "nope_nope" in records["mmzoo-broken"]["error"]
    assert records["mmzoo"]["status"] == "loaded" and "gated" in records["mmzoo"]["parts"]["fusion"]
    assert result.stderr.count("mmzoo-broken") == 1  # warned once


def test_listing_never_imports_torch():
    code = ("import sys, mmzoo; mmzoo.list_models(); mmzoo.list_components(); "
            "from mmzoo.cli import main; main(['list']); main(['plugins']); "
            "heavy = [m for m in ('torch', 'timm', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_pip_installed_plugin_works_by_name(tmp_path):
    """A plugin package built and installed by pip (not just laid out) is usable at once."""
    import subprocess

    pkg = tmp_path / "mmzoo-pipfoo"
    (pkg / "pipfoo").mkdir(parents=True)
    (pkg / "pipfoo" / "__init__.py").write_text(BASE_PLUGIN.replace("fixture_base_parts", "pipfoo.parts")
                                                .replace("fixture-", "pipfoo-"))
    (pkg / "pipfoo" / "parts.py").write_text(BASE_PARTS)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mmzoo-pipfoo"\nversion = "0.4.2"\ndependencies = []\n'
        '[project.entry-points.mmzoo]\npipfoo = "pipfoo"\n')
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(pkg)], check=True, capture_output=True, text=True, timeout=300)
    code = ("import mmzoo; m = mmzoo.create_model({'encoders': {'v': {'type': 'pipfoo-vector', 'in_dim': 2}}, "
            "'fusion': {'type': 'concat', 'dim': 4}, 'head': {'type': 'classification', 'num_classes': 3}}); "
            "b = m.preprocess([{'v': [1, 2], 'target': 1}, {'v': [3, 4], 'target': 2}]); "
            "print(tuple(m(b).outputs.shape), sorted(m.requires))")
    result = run_python(code, pythonpath=[target], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(2, 3) ['mmzoo', 'mmzoo-pipfoo']" in result.stdout
    listing = run_cli("list", "pipfoo-*", "--json", pythonpath=[target], cwd=tmp_path)
    assert {r["dist"] for r in json.loads(listing.stdout)} == {"mmzoo-pipfoo"}


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("mmzoo ")
