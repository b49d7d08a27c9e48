"""``mmzoo plugins``: installed plugin distributions, their parts, and whether they loaded."""

from __future__ import annotations

import argparse
import json

HELP = "show plugin distributions, versions, their parts, and loaded / failed / disabled with why"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def collect() -> list[dict]:
    """One record per distribution with ``mmzoo`` entry points."""
    from mmzoo.plugins import get_registry, plugin_infos
    from mmzoo.registry import REGISTERED_KINDS, iter_components

    registry = get_registry()
    records = []
    for info in plugin_infos():
        parts: dict[str, list[str]] = {}
        for comp in iter_components(registry, REGISTERED_KINDS):
            if comp.dist == info.dist:
                parts.setdefault(comp.kind, []).append(comp.name)
        models = sorted(n for n, es in registry.models.items() if any(e.dist == info.dist for e in es))
        problems = [{"where": p.where, "message": p.message, "model": p.model}
                    for p in registry.problems if p.dist == info.dist]
        records.append({"dist": info.dist, "version": info.version, "status": info.status, "error": info.error,
                        "entry_points": info.entry_points, "parts": {k: sorted(v) for k, v in parts.items()},
                        "models": models, "problems": problems})
    return records


def run(args: argparse.Namespace) -> int:
    records = collect()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for r in records:
        print(f"{r['dist']} {r['version']}  [{r['status']}]")
        if r["error"]:
            print(f"  error: {r['error']}")
        for kind, names in r["parts"].items():
            print(f"  {kind}s: {', '.join(names)}")
        if r["models"]:
            print(f"  models: {', '.join(r['models'])}")
        for p in r["problems"]:
            if p["model"] is not None:
                print(f"  problem: model '{p['model']}' cannot be built: {p['message']}")
            else:
                print(f"  skipped entry: {p['message']}")
    if not records:
        print("no plugin distributions found (is mmzoo installed?)")
    return 0
