"""mmzoo: a plugin-based zoo of multimodal models.

``import mmzoo`` is cheap: plugins are discovered on the first lookup, and torch is imported only
when a model is built. Public API::

    mmzoo.create_model(name_or_spec, pretrained=False, **overrides)
    mmzoo.create_dataset(name, split="train", **params)
    mmzoo.list_models(pattern="*", pretrained=False)
    mmzoo.list_components(kind=None, pattern="*")
    mmzoo.hookimpl, mmzoo.EncoderOutput, mmzoo.ModelOutput, mmzoo.MmzooError

Typed specs are :class:`mmzoo.spec.Spec`; what ``create_model`` accepts is listed in
:mod:`mmzoo.sources`; saved and published models are read by :func:`mmzoo.saved.read_model_dir`;
plugins ask :mod:`mmzoo.hub.settings` where the Hub is.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: importing typing alone costs milliseconds

__version__ = "0.1.0"

__all__ = [
    "EncoderOutput",
    "MmzooError",
    "ModelOutput",
    "__version__",
    "create_dataset",
    "create_model",
    "hookimpl",
    "list_components",
    "list_models",
]

# Everything is imported on first use, so that `import mmzoo` costs next to nothing.
_LAZY = {
    "MmzooError": ("mmzoo.errors", "MmzooError"),
    "EncoderOutput": ("mmzoo.outputs", "EncoderOutput"),
    "ModelOutput": ("mmzoo.outputs", "ModelOutput"),
    "hookimpl": ("mmzoo.plugins", "hookimpl"),
    "create_model": ("mmzoo.builder", "create_model"),
    "create_dataset": ("mmzoo.builder", "create_dataset"),
    "list_models": ("mmzoo.listing", "list_models"),
    "list_components": ("mmzoo.listing", "list_components"),
}

if TYPE_CHECKING:
    from mmzoo.builder import create_dataset, create_model
    from mmzoo.errors import MmzooError
    from mmzoo.listing import list_components, list_models
    from mmzoo.outputs import EncoderOutput, ModelOutput
    from mmzoo.plugins import hookimpl


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")
