"""``mmzoo train CONFIG.yaml [--nproc N] [--set KEY=VALUE ...]`` and ``mmzoo train --print-config``."""

from __future__ import annotations

import argparse
import os

HELP = "train a model from a YAML config (one process, --nproc N local ranks, or under torchrun)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="run.yaml: model, data, optim, output_dir, ...")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the reference run.yaml (every key, its default, allowed values and help) and exit",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="start N ranks on this machine through torch's elastic launcher",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=3e-4 (value read as YAML); repeatable",
    )


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import ConfigError, MmzooError
    from mmzoo.train.config import load_config

    if args.print_config:
        from mmzoo.train.reference import render_reference

        print(render_reference(), end="")
        return 0
    if args.config is None:
        raise ConfigError(
            "config: required, the run.yaml to train from (`mmzoo train --print-config` prints a reference)"
        )
    config = load_config(args.config, args.overrides)
    if args.nproc is not None and args.nproc > 1:
        from mmzoo.train.distributed import launch_local, under_launcher
        from mmzoo.train.rundir import plan_run

        if under_launcher():
            raise ConfigError(
                "--nproc: this process was already started by torchrun; drop --nproc and let "
                "torchrun's --nproc-per-node choose the number of ranks"
            )
        from mmzoo.train.runlock import RunDirLock, holder_env

        config.strategy_for(args.nproc)  # refuse a strategy that cannot run N ranks before starting any
        with RunDirLock(config.output_dir):  # held here for the ranks' life: rank 0 does not take it again
            plan_run(config)  # and an occupied run directory
            os.environ.update(holder_env(config.output_dir))
            forwarded = [args.config, *(f"--set={item}" for item in args.overrides)]
            return launch_local(args.nproc, ["train", *forwarded])
    if args.nproc is not None and args.nproc < 1:
        raise ConfigError(f"--nproc: expected an integer >= 1, got {args.nproc}")

    from mmzoo.train.memory import tune_malloc
    from mmzoo.train.trainer import train

    tune_malloc()
    try:
        result = train(config)
    except MmzooError as exc:
        from mmzoo.train.distributed import DistributedError

        if os.environ.get("RANK", "0") != "0" and not isinstance(exc, DistributedError):
            return 2  # every rank hit the same mistake; rank 0 reports it once
        raise  # a rank that lost the others says so itself: rank 0 may be the one that stopped
    if result.stopped_by:
        import signal

        return 128 + int(signal.Signals[result.stopped_by])
    return 0
