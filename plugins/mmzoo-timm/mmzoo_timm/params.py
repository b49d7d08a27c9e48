"""Checks on the timm keyword arguments of a ``timm/`` encoder, before timm sees them.

Any timm keyword argument is accepted, but timm does not check their kinds: ``global_pool: 16``
raises ``AttributeError`` deep inside a model's constructor, ``act_layer: nope`` a ``KeyError``.
The common ones are checked here and each wrong value is a :class:`BuildError` naming the part and
the parameter; whatever timm still raises is wrapped by :func:`timm_failure`.
"""

from __future__ import annotations

import math
from typing import Any

from mmzoo.errors import BuildError, did_you_mean

PROBABILITIES = ("drop_rate", "drop_block_rate", "attn_drop_rate", "proj_drop_rate", "pos_drop_rate",
                 "patch_drop_rate")
FLAGS = ("scriptable", "exportable", "no_jit", "zero_init_last")
POOL_EXAMPLES = "'avg', 'max', 'avgmax', 'token' or '' (none)"
#: The parameters of the timm encoders that name local files (mmzoo's ``path_params`` contract): mmzoo
#: refuses them when they come from a loaded model's config.json. timm reads ``checkpoint_path`` even when
#: ``pretrained`` is false, and a pretrained config (overlay) may point at a file.
PATH_PARAMS = ("pretrained_file", "checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
#: Of those, the ones that only say where the initial weights come from.
INITIAL_WEIGHTS_PARAMS = ("pretrained_file", "checkpoint_path", "cache_dir")


def forget_initial_weights(params: dict[str, Any]) -> dict[str, Any]:
    """The ``resolved_params`` that blank the initial-weights files among ``params``: a saved model holds
    its own weights, so its config.json need not (and, as it must not name local files, may not) say
    which local file the training started from."""
    return {key: None for key in INITIAL_WEIGHTS_PARAMS if params.get(key) is not None}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _layer_names(module: str, table: str) -> list[str]:
    import importlib

    # Only for "did you mean": timm keeps its tables of names private, so a missing one means no hint.
    return sorted(getattr(importlib.import_module(module), table, {}) or {})


def _check_layer(value: Any, param: str, where: str) -> None:
    from timm.layers import get_act_layer, get_norm_layer

    if callable(value):  # a class or factory passed from Python code
        return
    if not isinstance(value, str):
        raise BuildError(f"{where}: {param} must be the name of a timm layer (a string), got {value!r}")
    lookup, module, table = (
        (get_act_layer, "timm.layers.create_act", "_ACT_LAYER_DEFAULT")
        if param == "act_layer"
        else (get_norm_layer, "timm.layers.create_norm", "_NORM_MAP")
    )
    try:
        lookup(value)
    except (KeyError, ValueError, AssertionError, TypeError):
        names = _layer_names(module, table)
        known = f" (timm's names: {', '.join(names)})" if names else ""
        raise BuildError(
            f"{where}: {param} {value!r} is not a layer timm knows{known}.{did_you_mean(value, names)}"
        ) from None


def check_timm_kwargs(kwargs: dict[str, Any], where: str) -> None:
    """Raise :class:`BuildError` for a timm keyword argument of the wrong kind or range."""
    for param, value in kwargs.items():
        if param == "global_pool" and not isinstance(value, str):
            raise BuildError(f"{where}: global_pool must be a string such as {POOL_EXAMPLES}, got {value!r}")
        if param in ("act_layer", "norm_layer"):
            _check_layer(value, param, where)
        if param == "in_chans" and not (_is_int(value) and value > 0):
            raise BuildError(f"{where}: in_chans must be a positive integer (channels), got {value!r}")
        if param == "output_stride" and not (_is_int(value) and value > 0):
            raise BuildError(f"{where}: output_stride must be a positive integer such as 32, got {value!r}")
        if param == "num_classes" and not (_is_int(value) and value >= 0):
            raise BuildError(f"{where}: num_classes must be an integer >= 0, got {value!r}")
        if param in PROBABILITIES and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0
        ):
            raise BuildError(f"{where}: {param} must be a probability in [0, 1), got {value!r}")
        if param in FLAGS and not isinstance(value, bool):
            raise BuildError(f"{where}: {param} must be true or false, got {value!r}")
        if param == "features_only" and value:
            raise BuildError(
                f"{where}: features_only is not supported: the encoder needs timm's pooled head; "
                f"its token features come from forward_features already (tokens: true)"
            )
        if param in ("pretrained_cfg_overlay", "model_args") and not isinstance(value, dict):
            raise BuildError(f"{where}: {param} must be a mapping, got {type(value).__name__}")


def check_normalisation(name: str, value: Any, where: str) -> None:
    """``mean``/``std``: a finite number or a non-empty list of them (``std`` positive)."""
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not values or len(numbers) != len(values) or (name == "std" and min(numbers) <= 0):
        kind = "positive numbers" if name == "std" else "finite numbers"
        raise BuildError(f"{where}: {name} must be a number or a list of {kind} (one per channel), got {value!r}")


def timm_failure(where: str, kwargs: dict[str, Any], exc: Exception) -> BuildError:
    """The error for an exception timm raised while building with ``kwargs`` (the user's arguments)."""
    given = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k != "pretrained_cfg_overlay")
    detail = str(exc).splitlines()[0] if str(exc).strip() else "no message"
    with_params = f" with {given}" if given else ""
    return BuildError(f"{where}: timm could not build it{with_params} ({type(exc).__name__}: {detail})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
