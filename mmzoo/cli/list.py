"""``mmzoo list``: every part, dataset and model, by kind, with the distribution that provides it."""

from __future__ import annotations

import argparse
import json

HELP = "list parts, datasets and models (PATTERN is a glob such as 'gated*' or 'timm/vit*')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmzoo.registry import REGISTERED_KINDS  # here: `mmzoo --help` imports this module without calling this

    parser.add_argument("pattern", nargs="?", default="*", help="glob over names (default: everything)")
    parser.add_argument("--kind", choices=(*REGISTERED_KINDS, "model"), help="only this kind")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")


def run(args: argparse.Namespace) -> int:
    from mmzoo.listing import component_rows, model_rows
    from mmzoo.registry import REGISTERED_KINDS

    kinds = [args.kind] if args.kind else [*REGISTERED_KINDS, "model"]
    sections = {k: (model_rows(args.pattern) if k == "model" else component_rows(k, args.pattern)) for k in kinds}
    if args.json:
        print(json.dumps([row for rows in sections.values() for row in rows], indent=2))
        return 0
    shown = 0
    for kind, rows in sections.items():
        if not rows:
            continue
        print(f"{kind}s ({len(rows)})")
        name_w = max(len(r["name"]) for r in rows)
        dist_w = max(len(r["dist"]) for r in rows)
        for r in rows:
            extra = r.get("modality") or ""
            if kind == "model":
                extra = "+".join(sorted(r["encoders"])) + (" [weights]" if r["weights"] else "")
            print(f"  {r['name']:<{name_w}}  {r['dist']:<{dist_w}}  {extra:<12}  {r['description']}".rstrip())
            for problem in r.get("problems", ()):
                print(f"    problem: {problem}")
        shown += len(rows)
    if not shown:
        print(f"nothing matches {args.pattern!r}" + (f" among {args.kind}s" if args.kind else ""))
        return 1
    return 0
