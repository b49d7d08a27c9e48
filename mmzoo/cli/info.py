"""``mmzoo info NAME``: what a model is made of (or what a part takes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "describe a model (spec, parameters per part, providing distributions, weights) or a part"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a registry model, a model directory, 'hf-hub:org/repo[@rev]', or a part name")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def model_info(name: str) -> dict:
    """Spec, per-part parameter counts and providers of a registry model or saved model directory."""
    from mmzoo.builder import build_model
    from mmzoo.plugins import get_registry
    from mmzoo.spec import parse_spec
    from mmzoo.weights import skip_init

    registry = get_registry()
    path = Path(name)
    if name.startswith("hf-hub:"):
        from mmzoo.hub import download_model_dir, parse_hub_id

        path = download_model_dir(*parse_hub_id(name))
    if (path / "config.json").is_file():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        spec, where, weights, description = parse_spec(config.get("spec"), f"{path}/config.json"), str(path), {}, ""
    else:
        entry, _ = registry.model(name)
        spec, where, weights, description = entry.spec, f"models.{entry.name}", entry.weights, entry.description
    with skip_init():  # parameters on the meta device: counted, never allocated
        model = build_model(spec, registry=registry, where=where, for_weights=True)
    parts = []
    for part, module in model.part_modules().items():
        part_spec = spec["encoders"][part.split(".", 1)[1]] if part.startswith("encoders.") else spec[part]
        resolved = registry.resolve(_kind(part), part_spec["type"])
        params = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        parts.append({"part": part, "type": part_spec["type"], "dist": resolved.dist, "parameters": params,
                      "trainable": trainable, "output_dim": getattr(module, "output_dim", None)})
    return {"name": name, "description": description, "spec": spec, "parts": parts,
            "parameters": sum(p["parameters"] for p in parts), "requires": model.requires, "weights": weights}


def _kind(part: str) -> str:
    return "encoder" if part.startswith("encoders.") else part


def part_info(name: str) -> dict | None:
    """Description and parameters of a registered part or dataset, or None if ``name`` is none."""
    import inspect

    from mmzoo.errors import UnknownNameError
    from mmzoo.plugins import get_registry
    from mmzoo.registry import KINDS

    registry = get_registry()
    for kind in KINDS:
        try:
            resolved = registry.resolve(kind, name)
        except UnknownNameError:
            continue
        factory = resolved.factory()
        try:
            signature = str(inspect.signature(getattr(factory, "__wrapped__", factory)))
        except (TypeError, ValueError):
            signature = "(...)"
        return {"name": name, "kind": kind, "dist": resolved.dist, "modality": resolved.modality,
                "description": resolved.target.description, "signature": signature}
    return None


def run(args: argparse.Namespace) -> int:
    from mmzoo.plugins import get_registry

    if (args.name not in get_registry().models and not args.name.startswith("hf-hub:")
            and not Path(args.name, "config.json").is_file()):
        found = part_info(args.name)
        if found is not None:
            print(json.dumps(found, indent=2) if args.json else
                  f"{found['kind']} {found['name']}  (from {found['dist']})\n  {found['description']}\n"
                  f"  parameters: {found['signature']}")
            return 0
    info = model_info(args.name)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"model {info['name']}" + (f" — {info['description']}" if info["description"] else ""))
    print(f"  parameters: {info['parameters']:,}")
    width = max(len(p["part"]) for p in info["parts"])
    for p in info["parts"]:
        out = f"  out={p['output_dim']}" if p["output_dim"] else ""
        frozen = f"  ({p['parameters'] - p['trainable']:,} frozen)" if p["trainable"] < p["parameters"] else ""
        print(f"  {p['part']:<{width}}  {p['type']:<28} {p['parameters']:>12,} params{out}  from {p['dist']}{frozen}")
    print("  requires: " + ", ".join(f"{d} {v}" for d, v in info["requires"].items()))
    for tag, ref in info["weights"].items():
        pin = f"@{ref['revision']}" if ref.get("revision") else ""
        print(f"  weights[{tag}]: hf-hub:{ref['repo']}{pin}/{ref['file']}")
    if not info["weights"]:
        print("  weights: none published (build with pretrained=False and train it)")
    return 0
