"""The ``mmzoo`` command line: each subcommand lives in its own module of this package.

A command module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and imports
nothing heavy at its top level. A user mistake (any :class:`~mmzoo.MmzooError`) is printed as one
line, ``error: <message>``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMANDS = {
    "list": "mmzoo.cli.list",
    "info": "mmzoo.cli.info",
    "plugins": "mmzoo.cli.plugins",
    "train": "mmzoo.cli.train",
    "eval": "mmzoo.cli.eval",
    "explain": "mmzoo.cli.explain",
    "predict": "mmzoo.cli.predict",
    "push": "mmzoo.cli.push",
    "sweep": "mmzoo.cli.sweep",
    "cache": "mmzoo.cli.cache",
    "install": "mmzoo.cli.install",
    "uninstall": "mmzoo.cli.uninstall",
    "new-plugin": "mmzoo.cli.new_plugin",
    "completion": "mmzoo.cli.completion",
}


class _VersionAction(argparse.Action):
    """``--version``, read from the installed metadata only when asked (it costs more than the parser)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show mmzoo's version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import mmzoo

        print(f"mmzoo {mmzoo.__version__}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser. With ``only`` (the command a run names, "" for none), only that command's
    module is imported and its arguments added: the others are bare names (``mmzoo --help`` imports
    them all for their help lines), which spares start-up the modules and parsers a run never uses."""
    parser = argparse.ArgumentParser(prog="mmzoo", description="A plugin-based zoo of multimodal models.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only in COMMANDS and name != only:
            sub.add_parser(name)  # its name keeps argparse's choices (and its error messages) whole
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command whose module is not part of this installation
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        if only is None or only == name:
            module.add_arguments(cmd)
            cmd.set_defaults(run=module.run)
    return parser


def _command_named(argv: Sequence[str]) -> str:
    """The command a command line runs ("" for none: ``mmzoo --help``); the global options take no value,
    so it is the first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (see `mmzoo completion`)
        import argcomplete

        argcomplete.autocomplete(build_parser())
    argv = [*(sys.argv[1:] if argv is None else argv)]  # not list(): the `list` command module shadows it here
    parser = build_parser(only=_command_named(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mmzoo list | head`
        return 0
    except Exception as exc:
        from mmzoo.errors import MmzooError  # here: `mmzoo --help` never needs it

        if not isinstance(exc, MmzooError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
