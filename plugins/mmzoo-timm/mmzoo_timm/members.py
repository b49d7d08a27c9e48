"""The members of the ``timm/`` family, listed on demand (this imports timm)."""

from __future__ import annotations


def list_architectures() -> list[str]:
    """Every architecture timm can build, without tags (``resnet18``, ``vit_base_patch16_224``...)."""
    import timm

    return list(timm.list_models())
