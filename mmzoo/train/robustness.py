"""Accuracy with inputs missing: how a trained model copes when a modality is gone (the demo's table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmzoo.train.config import SplitConfig

#: The conditions of a robustness table, by column name: which inputs every example lacks.
CONDITIONS = {"all inputs": (), "image missing": ("image",), "audio missing": ("audio",)}


def metrics_without(model: Any, split: SplitConfig, missing: Sequence[str], *, batch_size: int = 64,
                    num_workers: int = 0) -> dict[str, float]:
    """The model's evaluation metrics on ``split`` with the inputs ``missing`` left out of every example
    (as ``mmzoo eval --missing``), in this process."""
    from mmzoo.data.base import WithoutInputs
    from mmzoo.train.data import build_dataset, eval_loader
    from mmzoo.train.distributed import setup_distributed
    from mmzoo.train.evaluate import evaluate

    ctx = setup_distributed("auto")
    try:
        dataset = build_dataset(split, "robustness")
        if missing:
            dataset = WithoutInputs(dataset, missing)
        loader = eval_loader(dataset, model.collator, batch_size=batch_size, rank=0, world_size=1, seed=0,
                             num_workers=num_workers, prefetch_factor=None, persistent_workers=False,
                             pin_memory=False)
        return evaluate(model.to(ctx.device), loader, ctx)
    finally:
        ctx.close()


def format_robustness(rows: Sequence[Mapping[str, Any]], examples: int) -> str:
    """A Markdown table: test accuracy per model under each condition ("" where a model lacks the input)."""
    lines = [
        f"av-digits test split ({examples} examples): accuracy with inputs missing",
        "",
        "| model | " + " | ".join(CONDITIONS) + " |",
        "|---|" + "--:|" * len(CONDITIONS),
    ]
    for row in rows:
        cells = [f"{row['robustness'][c]:.3f}" if c in row["robustness"] else "" for c in CONDITIONS]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_checks(rows: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, bool]]:
    """The demo's targets for the model trained with modality dropout: with one input missing, at least the
    single-modality model on the remaining input minus 0.03; with all inputs, within 0.02 of the fused model
    trained without dropout. Returns ``(statement with the numbers, met)`` pairs."""
    robust = rows["fused-dropout"]["robustness"]
    slack = 1e-9  # accuracies are counts over the split: 0.850 vs 0.870 is a gap of 0.02, not of 0.0200000001
    checks = []
    for missing, alone in (("image missing", "audio-only"), ("audio missing", "image-only")):
        floor = rows[alone]["accuracy"] - 0.03
        checks.append((f"{missing}: {robust[missing]:.3f} >= {alone} {rows[alone]['accuracy']:.3f} - 0.03",
                       robust[missing] >= floor - slack))
    plain = rows["fused"]["accuracy"]
    checks.append((f"all inputs: |{robust['all inputs']:.3f} - fused without dropout {plain:.3f}| <= 0.02",
                   abs(robust["all inputs"] - plain) <= 0.02 + slack))
    return checks
