"""Throwaway Python environments for tests that really run pip, and wheels built from this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support import REPO

PROJECTS = {"mmzoo": REPO, "mmzoo-timm": REPO / "plugins" / "mmzoo-timm",
            "mmzoo-transformers": REPO / "plugins" / "mmzoo-transformers"}
_SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "tests", "plugins",
                               "bench", "runs", "site", ".pytest_cache", ".ruff_cache", ".hypothesis")


class LayeredEnv:
    """A new venv layered over this one: it sees every package installed here (mmzoo, torch, pip, pytest)
    through a ``.pth`` file, but pip installs into, and uninstalls from, the new venv alone."""

    def __init__(self, root: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=300)
        self.root = root
        self.python = root / "bin" / "python"
        purelib = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        self.site = Path(purelib)
        base = sysconfig.get_paths()["purelib"]
        (self.site / "_layer_over_base.pth").write_text(f"import site; site.addsitedir({base!r})\n")

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run this environment's Python with ``args``; PATH starts with its bin (as when activated)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MMZOO_", "PYTHONPATH"))}
        env["PATH"] = os.pathsep.join([str(self.root / "bin"), os.environ.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(self.root)
        return subprocess.run([str(self.python), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def mmzoo(self, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run("-m", "mmzoo", *args, cwd=cwd, timeout=timeout)


def copy_project(name: str, dest: Path) -> Path:
    """A clean copy of one of this checkout's projects (so building it leaves nothing in the checkout)."""
    target = dest / name
    shutil.copytree(PROJECTS[name], target, ignore=_SKIP, symlinks=False)
    return target


def build_wheels(dest: Path, build_constraints: Path | None = None) -> dict[str, Path]:
    """Build the wheel of the core and of each first-party plugin into ``dest``; ``{dist: wheel}``."""
    sources = dest / "src"
    sources.mkdir(parents=True)
    projects = [copy_project(name, sources) for name in PROJECTS]
    out = dest / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out)]
    if build_constraints is not None:
        command += ["--build-constraint", str(build_constraints)]
    done = subprocess.run([*command, *map(str, projects)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = {}
    for wheel in out.glob("*.whl"):
        wheels[wheel.name.split("-")[0].replace("_", "-")] = wheel
    assert set(wheels) == set(PROJECTS), sorted(out.iterdir())
    return wheels
