"""``mmzoo eval RUN_DIR_OR_MODEL [--data DATASET] [--split test] [--param k=v ...] [--missing KEY] [--json]``."""

from __future__ import annotations

import argparse
import json

HELP = "evaluate a trained model (run dir, model dir, checkpoint, registry name or hf-hub:) on a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="RUN_DIR_OR_MODEL",
        help="a run directory, a save_pretrained directory, a checkpoint, a registry name or hf-hub:org/repo",
    )
    parser.add_argument(
        "--data", metavar="DATASET", help="registered dataset name (default: the run's evaluation data)"
    )
    parser.add_argument("--split", help="dataset split (default: the run's evaluation split, else 'test')")
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset parameter (value read as YAML); repeatable",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="examples per batch (default 64)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--max-examples", type=int, default=None, help="evaluate the first N examples only")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument(
        "--missing",
        action="append",
        default=[],
        metavar="KEY",
        help="evaluate with this input missing from every example (e.g. image); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import ConfigError
    from mmzoo.train.rawconfig import parse_override

    for name in ("batch_size", "num_workers", "max_examples"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "num_workers" else 1):
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    params: dict = {}
    for item in args.params:
        keys, value = parse_override(item)
        params[".".join(keys)] = value

    from mmzoo.train.evaluate import evaluate, load_for_eval
    from mmzoo.train.memory import tune_malloc

    tune_malloc()
    model, run_eval = load_for_eval(args.source)
    for key in args.missing:
        if key not in model.encoders:
            from mmzoo.errors import did_you_mean

            raise ConfigError(f"--missing {key}: the model has no input '{key}'; its inputs are "
                              f"{', '.join(model.encoders)}.{did_you_mean(key, list(model.encoders))}")
    split = _choose_split(args, run_eval, params)
    if split is None:
        raise ConfigError(
            "--data: required (a registered dataset name; see `mmzoo list --kind dataset`), "
            "since the source has no run config with evaluation data"
        )

    from mmzoo.data.labels import align_targets
    from mmzoo.train.data import build_dataset, eval_loader
    from mmzoo.train.distributed import setup_distributed
    from mmzoo.train.precision import Precision

    ctx = setup_distributed("auto")
    try:
        dataset = align_targets(build_dataset(split, "--data"), getattr(model, "labels", None), "--data")
        if args.missing:
            from mmzoo.data.base import WithoutInputs

            dataset = WithoutInputs(dataset, args.missing)
        loader = eval_loader(
            dataset,
            model.collator,
            batch_size=args.batch_size,
            rank=ctx.rank,
            world_size=ctx.world_size,
            seed=0,
            num_workers=args.num_workers,
            prefetch_factor=None,
            persistent_workers=False,
            pin_memory=ctx.device.type == "cuda",
        )
        model.to(ctx.device)
        metrics = evaluate(model, loader, ctx, precision=Precision(args.precision, ctx.device), progress=True)
    finally:
        ctx.close()
    if ctx.rank != 0:
        return 0
    count = int(metrics.pop("num_examples"))
    report = {
        "model": args.source,
        "dataset": split.dataset,
        "split": split.split,
        "params": split.params,
        "num_examples": count,
        "missing": list(args.missing),
        "metrics": metrics,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model    {args.source}")
        print(f"data     {split.dataset}, split {split.split} ({count} examples)")
        if args.missing:
            print(f"missing  {', '.join(args.missing)} (left out of every example)")
        width = max(len(k) for k in metrics) if metrics else 6
        for name, value in metrics.items():
            print(f"{name:<{width}}  {value:.4f}")
    return 0


def _choose_split(args: argparse.Namespace, run_eval, params: dict):
    """The split to evaluate: ``--data`` (keeping the run's dataset parameters when it is the run's
    evaluation dataset), else the run's evaluation split; ``--param``, ``--split`` and
    ``--max-examples`` override what the run used. None when there is neither."""
    from dataclasses import replace

    from mmzoo.train.config import SplitConfig

    if args.data is None:
        if run_eval is None:
            return None
        return replace(
            run_eval,
            split=args.split or run_eval.split,
            params={**run_eval.params, **params},
            max_examples=args.max_examples or run_eval.max_examples,
        )
    if run_eval is not None and run_eval.dataset == args.data:
        params = {**run_eval.params, **params}  # same dataset: keep the run's settings
    return SplitConfig(args.data, args.split or "test", params, args.max_examples)
