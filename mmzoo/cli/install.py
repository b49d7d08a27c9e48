"""``mmzoo install``: pip in mmzoo's own environment, then the parts the new plugins add.

What ``llm install`` does for llm: the user need not know which Python mmzoo runs in. pip runs as
``sys.executable -m pip``; its output is shown as it comes. Afterwards a fresh ``mmzoo plugins``
process (so that editable installs and new paths are seen) lists each plugin distribution that is new
or changed, with its parts and models, or why it failed to load.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "install plugins with pip into the environment mmzoo runs in, and list the parts they add"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("packages", nargs="*", metavar="PACKAGE",
                        help="what pip installs: a name (mmzoo-foo, 'mmzoo-foo>=0.2'), a wheel, a path or a URL")
    parser.add_argument("-e", "--editable", action="append", default=[], metavar="PATH",
                        help="install the project at PATH in editable mode (repeatable)")
    parser.add_argument("-U", "--upgrade", action="store_true", help="upgrade to the newest versions")
    parser.add_argument("--force-reinstall", action="store_true", help="reinstall even when up to date")
    parser.add_argument("--no-cache-dir", action="store_true", help="do not use pip's cache")
    parser.add_argument("--pre", action="store_true", help="accept pre-release versions")


def plugin_versions() -> dict[str, str]:
    """``{distribution: version}`` of every distribution declaring ``mmzoo`` entry points (from metadata
    alone: no plugin is imported)."""
    from importlib.metadata import entry_points

    from mmzoo.registry import normalize_dist

    return {normalize_dist(ep.dist.name): ep.dist.version for ep in entry_points(group="mmzoo") if ep.dist}


def pip(*args: str) -> int:
    """Run pip of this interpreter; returns its exit status."""
    import subprocess  # here, not at the top: `mmzoo --help` imports every command module

    return subprocess.call([sys.executable, "-m", "pip", *args])


def installed_records() -> list[dict]:
    """``mmzoo plugins --json`` of a fresh process (which sees what was just installed)."""
    import subprocess

    from mmzoo.errors import MmzooError

    done = subprocess.run([sys.executable, "-m", "mmzoo", "plugins", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise MmzooError(f"the packages were installed, but listing the plugins failed: {last}")
    return json.loads(done.stdout)


def describe(record: dict, before: str | None) -> list[str]:
    """Lines that say what one installed plugin distribution brings."""
    change = f"{before} -> {record['version']}" if before else record["version"]
    verb = "updated" if before else "added"
    if record["status"] == "failed":
        return [f"{verb} {record['dist']} {change}, but it failed to load: {record['error']}"]
    lines = [f"{verb} {record['dist']} {change}"]
    for kind, names in record["parts"].items():
        lines.append(f"  {kind}s: {', '.join(names)}")
    if record["models"]:
        lines.append(f"  models: {', '.join(record['models'])}")
    lines += [f"  problem: model '{p['model']}' cannot be built: {p['message']}" if p.get("model")
              else f"  skipped entry: {p['message']}" for p in record["problems"]]
    return lines


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import MmzooError

    if not args.packages and not args.editable:
        raise MmzooError("name at least one package to install (or a project with -e PATH)")
    from mmzoo.registry import normalize_dist

    flags = [flag for flag, on in (("--upgrade", args.upgrade), ("--force-reinstall", args.force_reinstall),
                                   ("--no-cache-dir", args.no_cache_dir), ("--pre", args.pre)) if on]
    before = plugin_versions()
    status = pip("install", *flags, *args.packages, *(arg for path in args.editable for arg in ("-e", path)))
    if status != 0:
        return status
    changed = [r for r in installed_records() if before.get(normalize_dist(r["dist"])) != r["version"]]
    if not changed:
        print("mmzoo: no new or updated plugin distributions (nothing installed declares 'mmzoo' entry points)")
        return 0
    for record in changed:
        print("\n".join(describe(record, before.get(normalize_dist(record["dist"])))))
    return 1 if any(r["status"] == "failed" for r in changed) else 0
