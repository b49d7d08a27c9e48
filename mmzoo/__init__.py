"""mmzoo: a plugin-based zoo of multimodal models.

``import mmzoo`` is cheap: plugins are discovered on the first lookup, and torch is imported only
when a model is built. Public API::

    mmzoo.create_model(name_or_spec, pretrained=False, **overrides)
    mmzoo.create_dataset(name, split="train", **params)
    mmzoo.list_models(pattern="*", pretrained=False)
    mmzoo.list_components(kind=None, pattern="*")
    mmzoo.hookimpl, mmzoo.EncoderOutput, mmzoo.ModelOutput, mmzoo.MmzooError
    mmzoo.data_limits()  (the limits on decoding data in force: mmzoo.data.limits)
    mmzoo.load_image(path), mmzoo.load_audio(path, sample_rate=None), mmzoo.resample_audio(x, rate, new_rate)
    mmzoo.RawInput  (an encoder's description of its raw input: mmzoo.rawinput)

Typed specs are :class:`mmzoo.spec.Spec`; what ``create_model`` accepts is listed in
:mod:`mmzoo.sources`; saved and published models are read by :func:`mmzoo.saved.read_model_dir`;
plugins ask :mod:`mmzoo.hub.settings` where the Hub is.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: importing typing alone costs milliseconds

__all__ = [
    "EncoderOutput",
    "MmzooError",
    "ModelOutput",
    "RawInput",
    "__version__",
    "create_dataset",
    "create_model",
    "data_limits",
    "hookimpl",
    "list_components",
    "list_models",
    "load_audio",
    "load_image",
    "resample_audio",
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
    "data_limits": ("mmzoo.data.limits", "data_limits"),
    "load_image": ("mmzoo.data.images", "load_image"),
    "load_audio": ("mmzoo.data.audio", "load_audio"),
    "resample_audio": ("mmzoo.data.audio", "resample"),
    "RawInput": ("mmzoo.rawinput", "RawInput"),
}

if TYPE_CHECKING:
    from mmzoo.builder import create_dataset, create_model
    from mmzoo.data.audio import load_audio
    from mmzoo.data.audio import resample as resample_audio
    from mmzoo.data.images import load_image
    from mmzoo.data.limits import data_limits
    from mmzoo.errors import MmzooError
    from mmzoo.listing import list_components, list_models
    from mmzoo.outputs import EncoderOutput, ModelOutput
    from mmzoo.plugins import hookimpl
    from mmzoo.rawinput import RawInput


def _version() -> str:
    """The installed distribution's version (pyproject.toml is its one source); a source tree that was
    never installed reports ``0+unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmzoo")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":  # read lazily: importlib.metadata costs more than the rest of `import mmzoo`
        globals()[name] = value = _version()
        return value
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what ``dir(mmzoo)`` and tab completion show), with the module's dunder names."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})
