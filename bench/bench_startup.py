"""Start-up: `import mmzoo`, `mmzoo --help` and `mmzoo list` vs a bare interpreter; `mmzoo list` vs listing
timm's models.

Listing must discover every plugin without importing torch, timm or transformers.
"""

from __future__ import annotations

import subprocess

from common import Result, interleaved, main, python, wall_time


def bench(args) -> list[Result]:
    repeats = 3 if args.quick else 11
    py = python()
    listing = subprocess.run(
        [py, "-c", "import sys, mmzoo; from mmzoo.cli import main; main(['list']); "
                   "print('heavy:' + ','.join(m for m in ('torch', 'timm', 'transformers') if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout
    heavy = listing[listing.rindex("heavy:") + len("heavy:"):].strip()
    times = interleaved({
        "pass": lambda: wall_time([py, "-c", "pass"]),
        "import": lambda: wall_time([py, "-c", "import mmzoo"]),
        "list": lambda: wall_time([py, "-m", "mmzoo", "list"]),
        "help": lambda: wall_time([py, "-m", "mmzoo", "--help"]),
        "timm": lambda: wall_time([py, "-c", "import timm; timm.list_models()"]),
    }, repeats)
    return [
        Result("startup", "import mmzoo vs python -c pass", times["import"], times["pass"], "s", "<= 1.5"),
        Result("startup", "mmzoo --help vs python -c pass", times["help"], times["pass"], "s", "<= 2.4"),
        Result("startup", "mmzoo list vs python -c pass", times["list"], times["pass"], "s", "<= 7"),
        Result("startup", "mmzoo list vs import timm; timm.list_models()", times["list"], times["timm"], "s",
               "<= 0.25", note=f"heavy modules imported while listing: {heavy or 'none'}"),
    ]


if __name__ == "__main__":
    main(bench, __doc__)
