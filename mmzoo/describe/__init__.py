"""What ``mmzoo info`` says about a model or a part, as plain data (what ``--json`` prints).

:func:`describe_model` takes a registry name, a spec file, a model directory (``local-dir:`` or a path),
a published model (``hf-hub:org/repo[@rev]``: its ``config.json`` only, never its weights) or a training
run directory, and returns its spec, parts (parameters counted on the meta device, never allocated),
providing distributions, weights files, labels, metrics, datasets, training record and each encoder's
expected raw input. :func:`describe_part` describes a registered part or dataset; an unknown member of a
family (``timm/resnet999``) is an error with close matches. Importing this package is cheap.
"""

from __future__ import annotations

from typing import Any


def describe_model(name: str) -> dict[str, Any]:
    """Everything ``mmzoo info NAME`` shows about a model (see the module)."""
    from mmzoo.builder import build_model
    from mmzoo.describe.inputs import describe_input
    from mmzoo.describe.sources import gather
    from mmzoo.plugins import get_registry
    from mmzoo.weights import skip_init

    registry = get_registry()
    facts = gather(name, registry)
    saved = facts.saved
    with skip_init():  # parameters on the meta device: counted, never allocated
        model = build_model(facts.spec, registry=registry, where=facts.where, for_weights=True,
                            requires=saved.requires if saved else None, loaded=saved.spec if saved else None)
    parts, inputs = [], {}
    for ref in model.typed_spec.parts():
        module = model.get_submodule(ref.path)
        resolved = registry.resolve(ref.kind, ref.name)
        params = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        parts.append({"part": ref.path, "type": ref.name, "dist": resolved.dist, "parameters": params,
                      "trainable": trainable, "output_dim": getattr(module, "output_dim", None)})
        if ref.kind == "encoder":
            inputs[ref.key] = describe_input(module, resolved.modalities(ref.params))
    return {
        "name": name,
        "source": facts.kind,
        "description": facts.description,
        "revision": facts.revision,
        "spec": facts.spec.to_dict(),
        "parts": parts,
        "parameters": sum(p["parameters"] for p in parts),
        "requires": model.requires,
        "saved_with": dict(saved.requires) if saved else None,
        "mmzoo_version": saved.mmzoo_version if saved else None,
        "inputs": inputs,
        "labels": list(saved.labels) if saved and saved.labels else None,
        "metrics": dict(saved.metrics) if saved else {},
        "datasets": list(saved.datasets) if saved else [],
        "training": dict(saved.training) if saved else {},
        "weights": facts.weights,
        "run": facts.run,
    }


def describe_part(name: str) -> dict[str, Any] | None:
    """Description and parameters of a registered part or dataset, or None if ``name`` is none; a
    family member that the family says does not exist is an UnknownNameError with close matches."""
    from mmzoo.describe.parts import describe_part as describe

    return describe(name)
