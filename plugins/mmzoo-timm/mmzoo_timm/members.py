"""The members of the ``timm/`` family, listed on demand (this imports timm)."""

from __future__ import annotations


def list_architectures() -> list[str]:
    """Every architecture timm can build, without tags (``resnet18``, ``vit_base_patch16_224``...)."""
    import timm

    return list(timm.list_models())


def is_architecture(member: str) -> bool:
    """Whether timm builds ``member`` (an architecture, with or without a pretrained tag such as
    ``resnet18.a1_in1k``)."""
    import timm

    return bool(timm.is_model(member))
