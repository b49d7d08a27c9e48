"""``mmzoo predict MODEL --input KEY=VALUE ... [--top-k K] [--json]`` and
``mmzoo predict MODEL --data DATASET [--param k=v ...] [--split S] [--out preds.jsonl]``."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "predict with a trained model on raw inputs (files, text) or on every example of a dataset"

EPILOG = """\
--input KEY=VALUE gives one example, a value per encoder key of the model. For a key whose encoder
reads images or audio the value is a file path (it must name an existing file: PNG, JPEG..., WAV, FLAC,
OGG...); for a vector key a list such as [0.5, 1.2]; for a text key the text itself.

--data runs over a whole dataset in batches and writes one JSON line per example: its index, its file
and line (manifest rows), the columns no encoder reads (an id...), its target and the prediction.
A model without class names (model.labels) names its classes by index.

examples:
  mmzoo predict runs/photos --input image=cat.jpg --top-k 3
  mmzoo predict hf-hub:org/repo --input image=digit.png --input audio=seven.wav --json
  mmzoo predict runs/photos --data manifest --param path=new.csv --out preds.jsonl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source",
        metavar="MODEL",
        help="a run directory (its final model), a save_pretrained directory, a registry name, hf-hub:org/repo, "
        "local-dir:PATH or a spec file",
    )
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="KEY=VALUE",
                        help="a raw input for encoder key KEY (a file path for image and audio keys); repeatable")
    parser.add_argument("--data", metavar="DATASET", help="predict on every example of this registered dataset")
    parser.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset parameter (value read as YAML), e.g. path=photos.csv; repeatable")
    parser.add_argument("--split", default="train",
                        help="dataset split (default 'train': a manifest without a split column is all 'train')")
    parser.add_argument("--max-examples", type=int, default=None, help="predict on the first N examples only")
    parser.add_argument("--out", default="-", metavar="FILE",
                        help="with --data: the JSON Lines file to write (default: standard output)")
    parser.add_argument("--top-k", type=int, default=1, help="classes to give per example (default 1)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="multi-label heads: the probability a label must reach (default: the head's)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per batch (default 32)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda when there is one)")
    parser.add_argument("--json", action="store_true", help="with --input: print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import ConfigError

    for name in ("top_k", "batch_size", "max_examples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    if bool(args.inputs) == bool(args.data):
        raise ConfigError("give either --input KEY=VALUE (one example) or --data DATASET (every example of it)")
    if args.params and not args.data:
        raise ConfigError("--param sets a dataset parameter; it goes with --data")
    from mmzoo.train.memory import tune_malloc

    tune_malloc()  # as mmzoo eval: the same forward without glibc re-faulting freed blocks
    model = _load(args.source, args.device)
    if args.inputs:
        return _predict_one(model, args)
    return _predict_dataset(model, args)


def _load(source: str, device: str):
    import torch

    from mmzoo.errors import ConfigError
    from mmzoo.train.evaluate import load_for_eval

    model, _ = load_for_eval(source)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return model.to(torch.device(device))
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError(f"--device {device}: {str(exc).splitlines()[0]}") from None


def _note_unnamed(model) -> None:
    from mmzoo.inference.predict import head_task

    if model.labels is None and head_task(model) in ("classification", "multilabel"):
        print("note: the model has no class names (model.labels), so classes are named by index",
              file=sys.stderr)


def _predict(model, examples, args):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once by _note_unnamed instead
        return model.predict(examples, top_k=args.top_k, threshold=args.threshold, batch_size=args.batch_size)


def _predict_one(model, args: argparse.Namespace) -> int:
    from mmzoo.inference.inputs import parse_inputs, shown

    example = parse_inputs(model, args.inputs)
    _note_unnamed(model)
    prediction = _predict(model, example, args)
    if args.json:
        report = {"model": args.source, "inputs": {k: shown(v) for k, v in example.items()},
                  "prediction": prediction.to_dict()}
        print(json.dumps(report, indent=2))
        return 0
    for line in _table(prediction.to_dict()):
        print(line)
    return 0


def _table(result: dict) -> list[str]:
    kind = result["kind"]
    if kind in ("classification", "multilabel"):
        if not result["labels"]:
            return [f"(no label reaches the threshold {result['threshold']:g})"]
        width = max(len(name) for name in result["labels"])
        return [f"{name:<{width}}  {score:.4f}" for name, score in zip(result["labels"], result["scores"])]
    if kind == "regression":
        width = max(len(name) for name in result["values"])
        return [f"{name:<{width}}  {value:.6g}" for name, value in result["values"].items()]
    if kind == "embedding":
        return [f"{key}: {len(vector)}-d embedding [{', '.join(f'{v:.4f}' for v in vector[:4])}, ...]"
                for key, vector in result["embeddings"].items()]
    return ["  ".join(f"{v:.6g}" for v in result["values"])]


def _predict_dataset(model, args: argparse.Namespace) -> int:
    from mmzoo.data.labels import dataset_labels
    from mmzoo.inference.inputs import prediction_records
    from mmzoo.train.config import SplitConfig
    from mmzoo.train.data import build_dataset
    from mmzoo.train.rawconfig import parse_override

    params: dict = {}
    for item in args.params:
        keys, value = parse_override(item)
        params[".".join(keys)] = value
    dataset = build_dataset(SplitConfig(args.data, args.split, params), "--data")
    labels = dataset_labels(dataset, "--data")
    count = len(dataset) if args.max_examples is None else min(len(dataset), args.max_examples)
    _note_unnamed(model)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    bar = _progress(count)
    try:
        records = prediction_records(model, dataset, batch_size=args.batch_size, top_k=args.top_k,
                                     threshold=args.threshold, labels=labels, limit=count)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for record in records:
                out.write(json.dumps(record) + "\n")
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if out is not sys.stdout:
            out.close()
    if args.out != "-":
        print(f"wrote {count} predictions to {args.out}", file=sys.stderr)
    return 0


def _progress(total: int):
    """A tqdm bar on standard error when it is a terminal (never in logs or pipes)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="predict", unit="example", file=sys.stderr, dynamic_ncols=True)
