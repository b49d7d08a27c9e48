"""The wheels build with the declared build floor, and every declared dependency floor resolves (slow: pip).

Each distribution is resolved with its own direct dependencies pinned at their floors (``name==floor``,
the lowest versions it claims to work with), transitive ones free: a floor that cannot be installed
(``transformers>=4.40`` beside ``huggingface-hub>=1.0``: every transformers 4.x caps the Hub client
below 1.0) fails here. ``pip install --dry-run --ignore-installed`` resolves as in a fresh environment
without installing anything. The newest versions, with every extra, must resolve too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.ecosystem.environments import PROJECTS, build_wheels

pytestmark = pytest.mark.slow
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

# What each distribution is resolved with: its extras that pull packages of others (dev tools aside).
EXTRAS = {"mmzoo": ["data", "tensorboard"], "mmzoo-timm": [], "mmzoo-transformers": []}


def floor(requirement: Requirement) -> str:
    """The lowest version a requirement accepts (its ``>=`` bound); fails when it declares none."""
    bounds = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    assert len(bounds) == 1, f"'{requirement}' declares no single floor (>=)"
    return bounds[0]


def requirements(wheel: Path, extras: list[str]) -> list[Requirement]:
    """The wheel's Requires-Dist for a plain install plus ``extras``."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    found = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    return [r for r in found if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in extras)]


def pins(reqs: list[Requirement]) -> str:
    return "".join(f"{r.name}=={floor(r)}\n" for r in reqs)


def dry_run(target: str, wheels: Path, constraints: Path | None, report: Path) -> tuple[int, str, dict]:
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--progress-bar", "off",
               "--find-links", str(wheels), "--report", str(report), target]
    if constraints is not None:
        command[5:5] = ["--constraint", str(constraints)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    output = (done.stdout + done.stderr).splitlines()
    lines = [line for line in output if not line.startswith(("WARNING: Location", "Requirement already", "  "))]
    installed = json.loads(report.read_text()) if done.returncode == 0 else {}
    return done.returncode, "\n".join(lines[-40:]), installed


def versions(report: dict) -> dict[str, str]:
    return {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report.get("install", [])}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The three wheels, built with setuptools pinned at the declared build floor."""
    dest = tmp_path_factory.mktemp("dists")
    build_floors = {}
    for project in PROJECTS.values():
        for line in tomllib.loads((project / "pyproject.toml").read_text())["build-system"]["requires"]:
            req = Requirement(line)
            build_floors.setdefault(req.name, set()).add(floor(req))
    assert all(len(v) == 1 for v in build_floors.values()), f"the projects disagree on build floors: {build_floors}"
    constraints = dest / "build-floors.txt"
    constraints.write_text("".join(f"{name}=={v.pop()}\n" for name, v in build_floors.items()))
    return build_wheels(dest, constraints)


@pytest.fixture(scope="module")
def resolutions(built, tmp_path_factory):
    """pip's resolution of each distribution at its floors, and of ``mmzoo[all,data]`` at the newest."""
    dest = tmp_path_factory.mktemp("resolve")
    folder = next(iter(built.values())).parent
    jobs = {}
    for dist, wheel in built.items():
        constraints = dest / f"{dist}-floors.txt"
        constraints.write_text(pins(requirements(wheel, EXTRAS[dist])))
        target = f"{dist}[{','.join(EXTRAS[dist])}]" if EXTRAS[dist] else dist
        jobs[dist] = (target, folder, constraints, dest / f"{dist}.json")
    jobs["newest"] = ("mmzoo[all,data]", folder, None, dest / "newest.json")
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {key: pool.submit(dry_run, *args) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def test_every_declared_dependency_has_a_floor(built):
    for wheel in built.values():
        for req in requirements(wheel, ["timm", "transformers", "all", "data", "tensorboard", "dev"]):
            floor(req)


@pytest.mark.parametrize("dist", sorted(PROJECTS))
def test_dependency_floors_resolve_together(resolutions, built, dist):
    status, errors, report = resolutions[dist]
    assert status == 0, f"{dist} at its dependency floors does not resolve:\n{errors}"
    chosen = versions(report)
    for req in requirements(built[dist], EXTRAS[dist]):
        assert Version(chosen[canonicalize_name(req.name)]) == Version(floor(req)), (req, chosen)


def test_the_newest_versions_resolve_with_every_extra(resolutions):
    status, errors, report = resolutions["newest"]
    assert status == 0, errors
    chosen = versions(report)
    assert chosen["mmzoo"] == chosen["mmzoo-timm"] == chosen["mmzoo-transformers"] == "0.1.0"
    assert {"torch", "timm", "transformers", "huggingface-hub", "mlxtend", "tensorboard"} <= set(chosen)


def test_wheels_carry_license_metadata_and_files(built):
    for dist, wheel in built.items():
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metadata = Parser().parsestr(archive.read(next(n for n in names if n.endswith("METADATA"))).decode())
        assert metadata["License-Expression"] == "Apache-2.0", dist
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), dist
        assert metadata.get_all("Classifier"), dist
    with zipfile.ZipFile(built["mmzoo"]) as archive:
        names = set(archive.namelist())
        assert "mmzoo/registry.yaml" in names
        assert "mmzoo/scaffold/templates/package/parts.py.tmpl" in names
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]" in entry_points and "mmzoo = mmzoo.testing.pytest_plugin" in entry_points
