"""The model card (``README.md``) of a published mmzoo model: Hub metadata, composition, how to load,
evaluation metrics and training curves when the run has them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
RUN_CONFIG_FILE = "config.yaml"
# record keys that are bookkeeping, not metrics
_NOT_METRICS = {"step", "epoch", "split", "elapsed_s", "world_size", "lr", "samples_per_s", "examples"}


@dataclass
class RunSummary:
    """What a training run directory tells the card: final metrics, datasets, curves."""

    metrics: dict[str, float] = field(default_factory=dict)
    metrics_step: int | None = None
    datasets: list[str] = field(default_factory=list)
    eval_split: str | None = None
    steps: int | None = None
    curves: Path | None = None


def read_run(run_dir: str | Path | None) -> RunSummary:
    """Summarise ``RUN_DIR/metrics.jsonl``, ``RUN_DIR/config.yaml`` and ``RUN_DIR/curves.png`` (each optional)."""
    summary = RunSummary()
    if run_dir is None:
        return summary
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS_FILE
    if metrics_path.is_file():
        records = []
        for line in metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a torn last line of a crashed run
                continue
            if isinstance(record, dict):
                records.append(record)
        summary.steps = max((r["step"] for r in records if _is_number(r.get("step"))), default=None)
        for record in reversed(records):
            if record.get("split") in ("final", "eval"):
                found = {
                    k.removeprefix("eval_"): float(v)
                    for k, v in record.items()
                    if k not in _NOT_METRICS and _is_number(v) and math.isfinite(v)
                }
                if found:
                    summary.metrics, summary.metrics_step = found, record.get("step")
                    break
    config_path = run_dir / RUN_CONFIG_FILE
    if config_path.is_file():
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            config = {}
        data = config.get("data") if isinstance(config, dict) else None
        if isinstance(data, dict):
            for split in ("train", "eval"):
                part = data.get(split)
                name = part.get("dataset") if isinstance(part, dict) else part
                if isinstance(name, str) and name not in summary.datasets:
                    summary.datasets.append(name)
            if isinstance(data.get("eval"), dict):
                summary.eval_split = data["eval"].get("split")
    if (run_dir / CURVES_FILE).is_file():
        summary.curves = run_dir / CURVES_FILE
    return summary


def base_models(spec: dict) -> list[str]:
    """Hub ids of the pretrained models the encoders start from (``hf/<repo>``, ``timm/<arch>``)."""
    out = []
    for part in spec.get("encoders", {}).values():
        kind = str(part.get("type", "")).split(":", 1)[-1]
        if part.get("pretrained", True) is False:
            continue
        if kind.startswith("hf/") and kind.count("/") >= 2:
            out.append(kind[3:])
        elif kind.startswith("timm/") and part.get("pretrained"):
            out.append(kind)
    return list(dict.fromkeys(out))


def modalities(spec: dict) -> dict[str, str]:
    """Batch key -> the modality its encoder declares in the registry (the key itself if unknown)."""
    out = {}
    try:
        from mmzoo.plugins import get_registry

        registry = get_registry()
    except Exception:  # the card must not fail because a plugin is broken
        registry = None
    for key, part in spec.get("encoders", {}).items():
        modality = None
        if registry is not None:
            try:
                modality = registry.resolve("encoder", part["type"]).modality
            except Exception:
                modality = None
        out[key] = modality or key
    return out


def card_metadata(config: dict, run: RunSummary, *, repo_id: str, license: str | None = None) -> dict[str, Any]:
    """The YAML front matter: library_name, tags, datasets, metrics, base_model, license, model-index."""
    from huggingface_hub import EvalResult, ModelCardData

    spec = config["spec"]
    parts = [p["type"] for p in spec["encoders"].values()] + [spec["fusion"]["type"], spec["head"]["type"]]
    tags = ["mmzoo", "multimodal", *modalities(spec).values(), *parts]
    name = repo_id.split("/")[-1]
    results = None
    if run.metrics and run.datasets:
        dataset = run.datasets[-1]
        results = [
            EvalResult(task_type=spec["head"]["type"], dataset_type=dataset, dataset_name=dataset,
                       dataset_split=run.eval_split, metric_type=metric, metric_name=metric, metric_value=value)
            for metric, value in run.metrics.items()
        ]
    data = ModelCardData(
        library_name="mmzoo",
        license=license or "unknown",
        tags=list(dict.fromkeys(tags)),
        datasets=run.datasets or None,
        metrics=list(run.metrics) or None,
        base_model=base_models(spec) or None,
        model_name=name if results else None,
        eval_results=results,
    )
    return data.to_dict()


def build_model_card(config: dict, *, repo_id: str, run: RunSummary | None = None,
                     license: str | None = None) -> str:
    """The full ``README.md`` for ``config`` (a save_pretrained config.json) published at ``repo_id``."""
    run = run or RunSummary()
    meta = card_metadata(config, run, repo_id=repo_id, license=license)
    spec = config["spec"]
    name = config.get("name") or repo_id.split("/")[-1]
    keys = modalities(spec)
    encoders = ", ".join(f"`{p['type']}` on `{k}` ({keys[k]})" for k, p in spec["encoders"].items())
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A multimodal model built with [mmzoo](https://pypi.org/project/mmzoo/): encoders {encoders}, "
        f"fused by `{spec['fusion']['type']}`, with a `{spec['head']['type']}` head.",
        "",
        "## Composition",
        "",
        "| part | type | parameters |",
        "| --- | --- | --- |",
    ]
    rows = [(f"encoders.{k}", p) for k, p in spec["encoders"].items()]
    rows += [("fusion", spec["fusion"]), ("head", spec["head"])]
    for part, params in rows:
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items() if k != "type") or "defaults"
        args = args.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| {part} | `{params['type']}` | {args} |")
    requires = config.get("requires") or {}
    pins = " ".join(f"'{dist}=={version}'" for dist, version in requires.items() if version != "unknown")
    example = ", ".join(f'"{k}": ...' for k in spec["encoders"])
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
    if run.metrics:
        where = f" ({', '.join(run.datasets)}" + (f", split `{run.eval_split}`" if run.eval_split else "") + ")"
        lines += ["", "## Evaluation", "", f"Final evaluation{where if run.datasets else ''}"
                  + (f" at step {run.metrics_step}" if run.metrics_step is not None else "") + ":",
                  "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {metric} | {value:.4g} |" for metric, value in run.metrics.items()]
    if run.curves is not None:
        lines += ["", "## Training curves", "", f"![training curves]({CURVES_FILE})"]
    if run.datasets or run.steps:
        lines += ["", "## Training", ""]
        if run.datasets:
            lines.append(f"- data: {', '.join(f'`{d}`' for d in run.datasets)} (mmzoo datasets)")
        if run.steps:
            lines.append(f"- optimizer steps: {run.steps}")
    return "\n".join(lines) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
