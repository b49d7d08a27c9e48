"""``mmzoo uninstall``: pip uninstall in mmzoo's own environment.

No plugin is imported on the way (this module reads nothing of the registry), so a plugin that is broken
at import, or that kills the process when imported, can always be removed.
"""

from __future__ import annotations

import argparse

HELP = "uninstall plugins with pip from the environment mmzoo runs in (works on plugins that are broken)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="distribution names, e.g. mmzoo-foo")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace) -> int:
    from mmzoo.cli.install import pip
    from mmzoo.errors import MmzooError
    from mmzoo.registry import normalize_dist

    if any(normalize_dist(name) == "mmzoo" for name in args.packages):
        raise MmzooError("'mmzoo uninstall' removes plugins, not mmzoo itself; use: python -m pip uninstall mmzoo")
    return pip("uninstall", *(["--yes"] if args.yes else []), *args.packages)
