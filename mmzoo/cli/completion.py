"""``mmzoo completion SHELL``: print the shell code that completes mmzoo's commands and options.

The script comes from argcomplete. It asks ``mmzoo`` itself for completions (``_ARGCOMPLETE`` set),
so what it offers is always the parser of the installed version, commands added later included.
"""

from __future__ import annotations

import argparse

HELP = "print a shell completion script, e.g.: eval \"$(mmzoo completion bash)\" in ~/.bashrc"
SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")
WHERE = {
    "bash": 'add to ~/.bashrc:  eval "$(mmzoo completion bash)"',
    "zsh": 'add to ~/.zshrc (after compinit):  eval "$(mmzoo completion zsh)"',
    "fish": "mmzoo completion fish > ~/.config/fish/completions/mmzoo.fish",
    "tcsh": "add to ~/.tcshrc:  eval `mmzoo completion tcsh`",
    "powershell": "add to your profile:  mmzoo completion powershell | Out-String | Invoke-Expression",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="; ".join(f"{s}: {w}" for s, w in WHERE.items()))


def run(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["mmzoo"], shell=args.shell))
    return 0
