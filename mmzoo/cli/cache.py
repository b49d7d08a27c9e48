"""``mmzoo cache list|clear``: the frozen-encoder feature cache (``<mmzoo cache>/features``)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import math

HELP = "list or clear the feature cache (frozen encoders' outputs kept by training runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every entry: encoder, data, examples, size; and the total")
    listing.add_argument("pattern", nargs="?", default="*", help="glob over entry names (default: all)")
    listing.add_argument("--json", action="store_true", help="print JSON rows (with each entry's full key)")
    clearing = actions.add_parser("clear", help="delete entries (all of them unless patterns say which)")
    clearing.add_argument("patterns", nargs="*", metavar="PATTERN", help="globs over entry names")


def run(args: argparse.Namespace) -> int:
    from mmzoo.feature_cache.store import features_root, list_entries

    root = features_root()
    patterns = args.patterns if args.action == "clear" else [args.pattern]
    entries = [e for e in list_entries(root) if any(fnmatch.fnmatchcase(e.name, p) for p in patterns or ["*"])]
    if args.action == "clear":
        return _clear(entries, root)
    if args.json:
        print(json.dumps([_row(e) for e in entries], indent=2, default=str))
        return 0
    total = sum(e.bytes for e in entries)
    print(f"feature cache {root}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {human_size(total)}")
    rows = [_row(e) for e in entries]
    if rows:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            what = f"{r['examples']:>9,} examples" if r["examples"] is not None else f"{r['state']:>18}"
            print(f"  {r['name']:<{width}}  {what}  {human_size(r['bytes']):>9}  {r['created'] or ''}".rstrip())
    return 0


def _row(entry) -> dict:
    meta = entry.meta or {}
    key = meta.get("key", {})
    return {
        "name": entry.name,
        "path": str(entry.path),
        "state": entry.state,
        "bytes": entry.bytes,
        "examples": meta.get("examples"),
        "tokens": meta.get("tokens"),
        "created": meta.get("created"),
        "build_seconds": meta.get("build_seconds"),
        "key": key,
    }


def _clear(entries, root) -> int:
    from mmzoo.feature_cache.store import remove_entry

    freed, removed, busy = 0, 0, []
    for entry in entries:
        if remove_entry(entry.path):
            freed += entry.bytes
            removed += 1
        else:
            busy.append(entry.name)
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {root}, {human_size(freed)} freed")
    for name in busy:
        print(f"  kept {name}: a build is writing it")
    return 0


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    units = ("kB", "MB", "GB", "TB")
    power = min(int(math.log(size, 1024)), len(units))
    return f"{size / 1024**power:.1f} {units[power - 1]}"
