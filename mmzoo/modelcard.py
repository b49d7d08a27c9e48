"""The model card (``README.md``) of a published mmzoo model: Hub metadata, composition, how to load,
class names, evaluation metrics and training curves.

Everything on the card comes from the model's own ``config.json`` (a :class:`~mmzoo.saved.SavedModel`):
the metrics, datasets and steps the trainer stored there, and its labels. Only the curves image comes
from the run directory, when there is one.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from mmzoo.saved import SavedModel
from mmzoo.spec import Spec

CURVES_FILE = "curves.png"
MAX_LABELS_SHOWN = 50


def base_models(spec: Spec) -> list[str]:
    """Hub ids of the pretrained models the encoders start from (``hf/<repo>``, ``timm/<arch>``)."""
    out = []
    for part in spec.parts("encoder"):
        name = part.name.split(":", 1)[-1]
        if part.params.get("pretrained", True) is False:
            continue
        if name.startswith("hf/") and name.count("/") >= 2:
            out.append(name[3:])
        elif name.startswith("timm/") and part.params.get("pretrained"):
            out.append(name)
    return list(dict.fromkeys(out))


def modalities(spec: Spec) -> dict[str, tuple[str, ...]]:
    """Batch key -> what its encoder reads, as the providing plugin resolves it for this part and its
    parameters (the batch key itself when no installed plugin can tell)."""
    try:
        from mmzoo.plugins import get_registry

        registry = get_registry()
    except Exception:  # the card must not fail because a plugin is broken
        registry = None
    out = {}
    for part in spec.parts("encoder"):
        found: tuple[str, ...] = ()
        if registry is not None:
            try:
                found = registry.resolve("encoder", part.name).modalities(part.params)
            except Exception:  # an uninstalled or failing plugin: the card still describes the model
                found = ()
        out[part.key] = found or (part.key,)
    return out


def card_metadata(saved: SavedModel, *, repo_id: str, license: str | None = None) -> dict[str, Any]:
    """The YAML front matter: library_name, tags, datasets, metrics, base_model, license, model-index."""
    from huggingface_hub import EvalResult, ModelCardData

    spec = saved.spec
    tags = ["mmzoo", "multimodal", *(m for found in modalities(spec).values() for m in found),
            *(part.name for part in spec.parts())]
    results = None
    if saved.metrics and saved.datasets:
        dataset = saved.training.get("eval_dataset") or saved.datasets[-1]
        results = [
            EvalResult(task_type=spec.head.name, dataset_type=dataset, dataset_name=dataset,
                       dataset_split=saved.training.get("eval_split"), metric_type=metric, metric_name=metric,
                       metric_value=value)
            for metric, value in saved.metrics.items()
        ]
    data = ModelCardData(
        library_name="mmzoo",
        license=license or "unknown",
        tags=list(dict.fromkeys(tags)),
        datasets=list(saved.datasets) or None,
        metrics=list(saved.metrics) or None,
        base_model=base_models(spec) or None,
        model_name=repo_id.split("/")[-1] if results else None,
        eval_results=results,
    )
    return data.to_dict()


def build_model_card(saved: SavedModel, *, repo_id: str, curves: bool = False, license: str | None = None) -> str:
    """The full ``README.md`` for ``saved`` published at ``repo_id``; ``curves``: ``curves.png`` is
    published beside it."""
    meta = card_metadata(saved, repo_id=repo_id, license=license)
    spec = saved.spec
    name = saved.name or repo_id.split("/")[-1]
    keys = modalities(spec)
    encoders = ", ".join(f"`{p.name}` on `{p.key}` ({'/'.join(keys[p.key])})" for p in spec.parts("encoder"))
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A multimodal model built with [mmzoo](https://pypi.org/project/mmzoo/): encoders {encoders}, "
        f"fused by `{spec.fusion.name}`, with a `{spec.head.name}` head.",
        "",
        "## Composition",
        "",
        "| part | type | parameters |",
        "| --- | --- | --- |",
    ]
    for part in spec.parts():
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in part.params.items()) or "defaults"
        args = args.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| {part.path} | `{part.name}` | {args} |")
    pins = " ".join(f"'{dist}=={version}'" for dist, version in saved.requires.items() if version != "unknown")
    example = ", ".join(f'"{key}": ...' for key in spec.encoders)
    lines += [
        "",
        "## How to load",
        "",
        "Install the distributions that provide its parts"
        + (f": `pip install {pins}`" if pins else " (see `requires` in config.json)")
        + ". Then:",
        "",
        "```python",
        "import mmzoo",
        "",
        f'model = mmzoo.create_model("hf-hub:{repo_id}").eval()',
        "print(model.load_report)",
        f"# batch = model.preprocess([{{{example}}}])  # one dict of raw inputs per example",
        "# outputs = model(batch).outputs",
        "```",
        "",
        f'Pin a revision for reproducible results: `mmzoo.create_model("hf-hub:{repo_id}@<commit sha>")`. '
        "Loading reads `config.json` and `model.safetensors` only; nothing from the repo is executed.",
    ]
    lines += _labels_section(saved) + _evaluation_section(saved)
    if curves:
        lines += ["", "## Training curves", "", f"![training curves]({CURVES_FILE})"]
    steps = saved.training.get("steps")
    if saved.datasets or steps:
        lines += ["", "## Training", ""]
        if saved.datasets:
            lines.append(f"- data: {', '.join(f'`{d}`' for d in saved.datasets)} (mmzoo datasets)")
        if steps:
            lines.append(f"- optimizer steps: {steps}")
    return "\n".join(lines) + "\n"


def _labels_section(saved: SavedModel) -> list[str]:
    if not saved.labels:
        return []
    shown = ", ".join(f"`{label.replace('`', '')}`" for label in saved.labels[:MAX_LABELS_SHOWN])
    more = f" and {len(saved.labels) - MAX_LABELS_SHOWN} more" if len(saved.labels) > MAX_LABELS_SHOWN else ""
    return ["", "## Classes", "", f"{len(saved.labels)} classes, by output index "
            f"(`model.labels`; `labels` in config.json): {shown}{more}."]


def _evaluation_section(saved: SavedModel) -> list[str]:
    if not saved.metrics:
        return []
    split = saved.training.get("eval_split")
    where = ""
    if saved.datasets:
        where = f" ({', '.join(saved.datasets)}" + (f", split `{split}`" if split else "") + ")"
    steps = saved.training.get("steps")
    lines = ["", "## Evaluation", "", f"Final evaluation{where}" + (f" at step {steps}" if steps else "") + ":",
             "", "| metric | value |", "| --- | --- |"]
    return lines + [f"| {metric} | {value:.4g} |" for metric, value in saved.metrics.items()]
