"""``mmzoo sweep SWEEP.yaml [--parallel N]``: train every point of a grid and tabulate the results."""

from __future__ import annotations

import argparse
import shlex
import sys

HELP = "train every point of a grid over a run config (skips finished points) and write results.csv/.md/.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", help="SWEEP.yaml: base (run config), grid (key -> values), output_dir")
    parser.add_argument("--parallel", type=int, default=1, metavar="N", help="train N points at once (1)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change every point's run config, e.g. --set optim.steps=50; repeatable")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=[V1,V2]",
                        help="replace or add a grid axis, e.g. --grid seed=[0]; repeatable")
    parser.add_argument("--output-dir", help="instead of the file's output_dir")
    parser.add_argument("--results-dir", help="instead of the file's results_dir")
    parser.add_argument("--dry-run", action="store_true", help="list the points and whether each would run")


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import ConfigError
    from mmzoo.sweep.config import load_sweep
    from mmzoo.sweep.results import write_results
    from mmzoo.sweep.runner import plan, read_status, run_points

    if args.parallel < 1:
        raise ConfigError(f"--parallel: expected an integer >= 1, got {args.parallel}")
    sweep = load_sweep(args.sweep, overrides=args.overrides, grid=args.grid, output_dir=args.output_dir,
                       results_dir=args.results_dir)
    todo, finished = plan(sweep)
    print(f"mmzoo sweep: {len(sweep.points)} points, {len(finished)} already finished, {len(todo)} to run"
          + (f" ({args.parallel} at a time)" if args.parallel > 1 and todo else "") + f"; runs in {sweep.runs_dir}",
          flush=True)
    if args.dry_run:
        for point in sweep.points:
            print(f"  {'finished' if point in finished else 'to run  '}  {point.name}")
        return 0
    statuses = {point.name: read_status(sweep, point) for point in finished}
    statuses.update(run_points(sweep, todo, parallel=args.parallel, note=lambda line: print(line, flush=True)))
    command = "mmzoo sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["sweep"] else (
        f"mmzoo sweep {args.sweep}")
    written = write_results(sweep, statuses, command)
    failed = [name for name, status in statuses.items() if status.get("status") != "done"]
    print(f"results: {', '.join(str(p) for p in written)}")
    if failed:
        print(f"{len(failed)} point(s) did not finish: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
