"""``mmzoo explain MODEL --input KEY=VALUE ... [--target N] [--json] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "explain a model's prediction for one example: Shapley values per input and heat maps within them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="MODEL",
        help="a run directory, a save_pretrained directory, a checkpoint, a registry name or hf-hub:org/repo",
    )
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one input of the example: an image or audio file, a text (@FILE reads one), numbers for a vector; "
        "repeatable; an input left out is missing",
    )
    parser.add_argument("--target", type=int, default=None,
                        help="the output index to explain (default: the predicted class)")
    parser.add_argument("--steps", type=int, default=128, help="integrated-gradient steps (default 128)")
    parser.add_argument("--no-within", action="store_true",
                        help="only the per-input Shapley values, no heat maps or token scores")
    parser.add_argument("--out", type=Path, default=Path("mmzoo-explain"),
                        help="where the PNG files and explanation.json go (default ./mmzoo-explain)")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")


def run(args: argparse.Namespace) -> int:
    from mmzoo.errors import ConfigError

    if args.steps < 2:
        raise ConfigError(f"--steps: expected an integer >= 2, got {args.steps}")

    from mmzoo.explain.inputs import parse_pairs, read_inputs
    from mmzoo.train.evaluate import load_for_eval

    model, _ = load_for_eval(args.source)
    pairs = parse_pairs(args.inputs, list(model.encoders))
    example = read_inputs(pairs, model.modalities)
    explanation = model.explain([example], target=args.target, within=not args.no_within, steps=args.steps,
                                out_dir=args.out)[0]
    report = {"model": args.source, "inputs": pairs, **explanation.to_dict()}
    (args.out / "explanation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(_text(report, list(model.encoders)))
    return 0


def _text(report: dict, keys: list[str]) -> str:
    what = f"'{report['label']}' (output {report['target']})" if report["label"] is not None else \
        f"output {report['target']}"
    missing = [k for k in keys if k not in report["present"]]
    lines = [
        f"model      {report['model']}",
        f"explains   {what}: logit {report['score']:.4g} with its inputs, {report['baseline']:.4g} with none",
        f"inputs     {', '.join(report['present'])}" + (f" (missing: {', '.join(missing)})" if missing else ""),
        f"Shapley values (they add up to {report['shapley_sum']:.4g}):",
    ]
    width = max(len(k) for k in keys)
    top = max((abs(v) for v in report["shapley"].values()), default=0.0) or 1.0
    for key, value in report["shapley"].items():
        bar = ("+" if value >= 0 else "-") * round(20 * abs(value) / top)
        lines.append(f"  {key:<{width}}  {value:+.4f}  {bar}")
    for key, tokens in report["tokens"].items():
        shown = tokens["words"] or [{"word": t["token"], "score": t["score"]} for t in tokens["tokens"]]
        ranked = sorted(shown, key=lambda w: -abs(w["score"]))[:8]
        lines.append(f"{key}: strongest " + ", ".join(f"{w['word']!r} {w['score']:+.3f}" for w in ranked))
    for key, image in report["images"].items():
        lines.append(f"{key} heat map: {image['png']}")
    lines.append(f"chart: {report['chart']}")
    return "\n".join(lines)
