"""``curves.png``: training loss and each evaluation metric over optimizer steps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmzoo.train.checkpoint import atomic_write

_SKIP = {"step", "epoch", "split", "time", "timestamp", "elapsed_s", "world_size", "examples", "eval_num_examples"}


def curve_panels(records: Sequence[dict[str, Any]]) -> list[str]:
    """The panels :func:`plot_curves` draws: ``loss`` (training and evaluation), then each evaluation metric
    (``eval_<name>``); bookkeeping fields such as ``time`` or ``examples`` are not curves."""
    train = any(r.get("split", "train") == "train" and _number(r.get("loss")) for r in records)
    evals = [r for r in records if r.get("split") == "eval"]
    eval_names = sorted({k for r in evals for k, v in r.items() if k not in _SKIP and _number(v)})
    return (["loss"] if train or "eval_loss" in eval_names else []) + [n for n in eval_names if n != "eval_loss"]


def plot_curves(records: Sequence[dict[str, Any]], path: Path, title: str | None = None) -> Path | None:
    """Draw the curves found in metrics records; returns the path, or None when there is nothing."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("split", "train") == "train" and _number(r.get("loss"))]
    evals = [r for r in records if r.get("split") == "eval"]
    panels = curve_panels(records)
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        if panel == "loss":
            if train:
                axis.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", lw=1.2)
            points = [r for r in evals if _number(r.get("eval_loss"))]
            if points:
                axis.plot(
                    [r["step"] for r in points],
                    [r["eval_loss"] for r in points],
                    "o-",
                    label="eval",
                    lw=1.2,
                    ms=3,
                )
            axis.set_title("loss")
            axis.legend(frameon=False)
        else:
            points = [r for r in evals if _number(r.get(panel))]
            axis.plot([r["step"] for r in points], [r[panel] for r in points], "o-", lw=1.2, ms=3)
            axis.set_title(panel.removeprefix("eval_"))
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    atomic_write(Path(path), lambda p: figure.savefig(p, format="png", dpi=110))
    plt.close(figure)
    return Path(path)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
