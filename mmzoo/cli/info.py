"""``mmzoo info NAME``: what a model is made of, what it was trained to do, and where its weights are
(or what a part takes)."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "describe a model (parts, weights, labels, metrics, training, expected inputs) or a part"
LABELS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a registry model, a model or run directory, 'local-dir:PATH', "
                                     "'hf-hub:org/repo[@rev]' (its config.json only: no weights are downloaded), "
                                     "a spec file, or a part name")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def model_info(name: str) -> dict:
    """What ``mmzoo info`` reports about a model (see :func:`mmzoo.describe.describe_model`)."""
    from mmzoo.describe import describe_model

    return describe_model(name)


def part_info(name: str) -> dict | None:
    """What ``mmzoo info`` reports about a part, or None (see :func:`mmzoo.describe.describe_part`)."""
    from mmzoo.describe import describe_part

    return describe_part(name)


def run(args: argparse.Namespace) -> int:
    from mmzoo.plugins import get_registry
    from mmzoo.sources import parse_source

    registry = get_registry()
    if parse_source(args.name, registry).kind == "registry" and not registry.has_model(args.name):
        found = part_info(args.name)
        if found is not None:
            print(json.dumps(found, indent=2) if args.json else _part_text(found))
            return 0
    info = model_info(args.name)
    print(json.dumps(info, indent=2) if args.json else "\n".join(_model_lines(info)))
    return 0


def _part_text(found: dict[str, Any]) -> str:
    lines = [f"{found['kind']} {found['name']}  (from {found['dist']})", f"  {found['description']}",
             f"  parameters: {found['signature']}"]
    member = found.get("member")
    if member and not member["checked"]:
        lines.append(f"  note: {member['family']} could not check here that this member exists")
    return "\n".join(lines)


def _model_lines(info: dict[str, Any]) -> list[str]:
    head = f"model {info['name']}" + (f" — {info['description']}" if info["description"] else "")
    lines = [head + (f"  (revision {info['revision']})" if info.get("revision") else ""),
             f"  parameters: {info['parameters']:,}"]
    width = max(len(p["part"]) for p in info["parts"])
    for p in info["parts"]:
        out = f"  out={p['output_dim']}" if p["output_dim"] else ""
        frozen = f"  ({p['parameters'] - p['trainable']:,} frozen)" if p["trainable"] < p["parameters"] else ""
        lines.append(f"  {p['part']:<{width}}  {p['type']:<28} {p['parameters']:>12,} params{out}  "
                     f"from {p['dist']}{frozen}")
    lines.append("  requires: " + ", ".join(f"{d} {v}" for d, v in info["requires"].items()))
    if info["inputs"]:
        from mmzoo.describe.inputs import input_text

        lines.append("  inputs:")
        lines += [f"    {key}: {input_text(found)}" for key, found in info["inputs"].items()]
    labels = info.get("labels")
    if labels:
        more = ", ..." if len(labels) > LABELS_SHOWN else ""
        lines.append(f"  labels: {len(labels)} classes ({', '.join(labels[:LABELS_SHOWN])}{more})")
    if info["metrics"]:
        on = f" on {', '.join(info['datasets'])}" if info["datasets"] else ""
        lines.append(f"  metrics{on}: " + ", ".join(f"{k}={v:.4g}" for k, v in info["metrics"].items()))
    lines += _training_lines(info)
    lines += _weights_lines(info)
    return lines


def _training_lines(info: dict[str, Any]) -> list[str]:
    training, run = info["training"], info.get("run")
    lines = []
    if training:
        from mmzoo.modelcard import weights_step

        which = weights_step(training)
        facts = [f"weights from {which}" if which else None,
                 f"{training['world_size']} process(es)" if training.get("world_size") else None,
                 training.get("precision")]
        lines.append("  training: " + ", ".join(f for f in facts if f))
    if run:
        best = run.get("best")
        best_text = f", best {best['metric']}={best['value']:.4g} at step {best['step']}" if best else ""
        state = "finished" if run["finished"] else "not finished (no model/)"
        lines.append(f"  run: {run['steps'] or 0} steps, {state}, final_model: {run['final_model']}{best_text}")
    return lines


def _weights_lines(info: dict[str, Any]) -> list[str]:
    weights = info["weights"]
    if not weights:
        if info["source"] in ("registry", "spec-file"):
            return ["  weights: none published (build with pretrained=False and train it)"]
        return ["  weights: none"]
    lines = ["  weights:"]
    for w in weights:
        facts = [_size(w.get("size"))]
        if w.get("sha256"):
            facts.append(f"sha256 {w['sha256']}")
        if w.get("format") == "pickle":
            facts.append("pickle (loaded only with allow_pickle=True)")
        if w.get("tag"):
            facts.append(f"tag {w['tag']}")
        if w.get("step") is not None:
            marks = "".join(f", {m}" for m in w.get("marks", []))
            facts.append(f"step {w['step']}{marks}")
        if w.get("metrics"):
            facts.append(" ".join(f"{k}={v:.4g}" for k, v in w["metrics"].items()))
        if "source" in w:
            facts.append(w["source"])
        if "cached" in w:
            facts.append("in the Hub cache" if w["cached"] else "not in the Hub cache")
        if w.get("listed") is False:
            facts.append("offline: the Hub was not asked what the repo holds")
        lines.append(f"    {w['file']}  " + ", ".join(f for f in facts if f))
    return lines


def _size(size: int | None) -> str | None:
    if size is None:
        return None
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return None
