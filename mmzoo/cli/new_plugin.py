"""``mmzoo new-plugin NAME``: write a ready plugin package (parts, models, tests, README)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a new plugin package: pyproject, hook module, an encoder, fusion and head, models, tests"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the distribution name, e.g. mmzoo-foo (the package becomes mmzoo_foo)")
    parser.add_argument("--dir", type=Path, metavar="DIR", help="where to write it (default: ./NAME; must be "
                                                                "new or empty)")


def run(args: argparse.Namespace) -> int:
    from mmzoo.scaffold import write_plugin

    root, files = write_plugin(args.name, args.dir)
    print(f"wrote {root}/ ({len(files)} files):")
    for path in files:
        print(f"  {path.relative_to(root)}")
    print(f"next: mmzoo install -e {root} && (cd {root} && pytest)")
    return 0
