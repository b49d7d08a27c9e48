"""Pictures of explanations (matplotlib, no display needed): a Shapley bar chart and image heat maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmzoo.explain.result import Explanation
from mmzoo.explain.within import heat_to_array


def _figure(width: float, height: float):
    # A bare Figure draws to files without pyplot, so the caller's matplotlib backend and state are untouched.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_shapley_chart(explanation: Explanation, path: str | Path) -> Path:
    """A horizontal bar per input: its Shapley value for the explained output (green raises it)."""
    keys = list(explanation.shapley)
    values = [explanation.shapley[k] for k in keys]
    names = [k if k in explanation.present else f"{k} (missing)" for k in keys]
    fig = _figure(6, 1.2 + 0.5 * len(keys))
    ax = fig.subplots()
    ax.barh(names, values, color=["#2a9d55" if v >= 0 else "#c0392b" for v in values])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    what = explanation.label if explanation.label is not None else f"output {explanation.target}"
    ax.set_title(f"why '{what}': score {explanation.score:.3g} = baseline {explanation.baseline:.3g} "
                 f"+ Shapley values", fontsize=9)
    ax.set_xlabel("Shapley value (logit)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def image_array(value: Any) -> np.ndarray | None:
    """A raw image example (PIL image, array ``HxW``/``HxWxC``/``CxHxW``, uint8 or floats in [0, 1],
    or a tensor) as floats ``[H, W, 3]`` in [0, 1]; None for anything else."""
    if hasattr(value, "convert") and hasattr(value, "mode"):
        value = np.asarray(value.convert("RGB"))
    elif hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) or value.ndim not in (2, 3):
        return None
    array = value.astype(np.float32) / 255.0 if value.dtype == np.uint8 else value.astype(np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 4:
        array = array[..., :3]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.clip(array, 0.0, 1.0)


def save_heat_overlay(raw: Any, heat: np.ndarray, path: str | Path, title: str = "") -> Path:
    """The image with its positive attributions overlaid (heat map stretched over the raw image), beside
    the signed heat map at the encoder's resolution."""
    image = image_array(raw)
    fig = _figure(7, 3.6)
    axes = fig.subplots(1, 2)
    positive = heat_to_array(heat)
    if image is not None:
        height, width = image.shape[:2]
        axes[0].imshow(image, extent=(0, width, height, 0))
        from matplotlib import colormaps

        overlay = colormaps["autumn"](positive)
        overlay[..., 3] = 0.85 * positive  # opaque where attributions are strong, clear elsewhere
        axes[0].imshow(overlay, extent=(0, width, height, 0), interpolation="bilinear")
    else:
        axes[0].imshow(positive, cmap="inferno")
    axes[0].set_title("image + positive attributions", fontsize=9)
    bound = float(np.abs(heat).max()) or 1.0
    shown = axes[1].imshow(heat, cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[1].set_title("integrated gradients (signed)", fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
