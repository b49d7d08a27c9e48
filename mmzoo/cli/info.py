"""``mmzoo info NAME``: what a model is made of (or what a part takes)."""

from __future__ import annotations

import argparse
import json

HELP = "describe a model (spec, parameters per part, providing distributions, weights) or a part"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a registry model, a model directory, 'hf-hub:org/repo[@rev]', or a part name")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def model_info(name: str) -> dict:
    """Spec, per-part parameter counts and providers of a registry model, a saved model directory
    (``local-dir:`` or a path) or a published one (``hf-hub:``); for saved ones also their labels,
    metrics and datasets (from ``config.json``)."""
    from mmzoo.builder import build_model
    from mmzoo.plugins import get_registry
    from mmzoo.sources import parse_source
    from mmzoo.weights import skip_init

    registry = get_registry()
    source = parse_source(name, registry)
    info: dict = {"name": name, "description": "", "weights": {}}
    if source.kind in ("hf-hub", "local-dir"):
        from mmzoo.saved import read_model_dir

        directory = source.target
        if source.kind == "hf-hub":
            from mmzoo.hub.download import download_model_dir, parse_hub_id

            directory = download_model_dir(*parse_hub_id(name))
        saved = read_model_dir(directory, source=name)
        spec, where, requires, loaded = saved.spec, f"{name}: config.json spec", saved.requires, saved.spec
        info.update({"labels": list(saved.labels) if saved.labels else None, "metrics": saved.metrics,
                     "datasets": list(saved.datasets)})
    else:
        entry, _ = registry.model(name)
        spec, where, requires, loaded = entry.spec, f"models.{entry.name}", None, None
        info.update({"description": entry.description, "weights": entry.weights})
    with skip_init():  # parameters on the meta device: counted, never allocated
        model = build_model(spec, registry=registry, where=where, for_weights=True, requires=requires,
                            loaded=loaded)
    parts = []
    for ref in model.typed_spec.parts():
        module = model.get_submodule(ref.path)
        resolved = registry.resolve(ref.kind, ref.name)
        params = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        parts.append({"part": ref.path, "type": ref.name, "dist": resolved.dist, "parameters": params,
                      "trainable": trainable, "output_dim": getattr(module, "output_dim", None)})
    return {**info, "spec": spec.to_dict(), "parts": parts, "parameters": sum(p["parameters"] for p in parts),
            "requires": model.requires}


def part_info(name: str) -> dict | None:
    """Description and parameters of a registered part or dataset, or None if ``name`` is none."""
    import inspect

    from mmzoo.errors import UnknownNameError
    from mmzoo.plugins import get_registry
    from mmzoo.registry import COMPONENT_KINDS

    registry = get_registry()
    for kind in COMPONENT_KINDS:
        try:
            resolved = registry.resolve(kind, name)
        except UnknownNameError:
            continue
        factory = resolved.factory()
        try:
            signature = str(inspect.signature(getattr(factory, "__wrapped__", factory)))
        except (TypeError, ValueError):
            signature = "(...)"
        modality = "|".join(resolved.modalities()) or None
        return {"name": name, "kind": kind, "dist": resolved.dist, "modality": modality,
                "description": resolved.target.description, "signature": signature}
    return None


def run(args: argparse.Namespace) -> int:
    from mmzoo.plugins import get_registry
    from mmzoo.sources import parse_source

    registry = get_registry()
    if parse_source(args.name, registry).kind == "registry" and not registry.has_model(args.name):
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
    if info.get("labels"):
        print(f"  labels: {len(info['labels'])} classes ({', '.join(info['labels'][:10])}"
              f"{', ...' if len(info['labels']) > 10 else ''})")
    if info.get("metrics"):
        on = f" on {', '.join(info['datasets'])}" if info.get("datasets") else ""
        print(f"  metrics{on}: " + ", ".join(f"{k}={v:.4g}" for k, v in info["metrics"].items()))
    for tag, ref in info["weights"].items():
        pin = f"@{ref['revision']}" if ref.get("revision") else ""
        print(f"  weights[{tag}]: hf-hub:{ref['repo']}{pin}/{ref['file']}")
    if not info["weights"] and "metrics" not in info:
        print("  weights: none published (build with pretrained=False and train it)")
    return 0
