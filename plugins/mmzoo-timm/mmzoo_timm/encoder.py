"""``timm/<architecture>``: any timm architecture as an image encoder.

The classifier is removed (``num_classes=0``): the pooled output is what timm's own head computes
before its last linear layer; tokens are ``forward_features`` as a sequence (ViT-style ``[B, T, D]``
as is, a ``[B, C, H, W]`` map flattened to ``[B, H*W, C]``) with an all-true mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import create_transform, resolve_data_config
from torch import Tensor, nn

from mmzoo import RawInput
from mmzoo.errors import BuildError, UnknownNameError, WeightsError, did_you_mean
from mmzoo.outputs import EncoderOutput
from mmzoo_timm.batched import BatchedEvalTransform
from mmzoo_timm.images import MODES, to_pil
from mmzoo_timm.params import (
    PATH_PARAMS,
    check_normalisation,
    check_timm_kwargs,
    forget_initial_weights,
    timm_failure,
)
from mmzoo_timm.pretrained import pretrained_overlay


class TimmEncoder(nn.Module):
    """Wrap a timm model built with ``num_classes=0`` as an mmzoo image encoder.

    :param model: the timm model (classifier removed).
    :param name: the part's name, used in messages.
    :param data_config: timm data config (``input_size``, ``mean``, ``std``, ``interpolation``...).
    :param freeze: keep every weight fixed (and batch-norm statistics too: the model stays in eval).
    :param augment: ``False`` for one transform in training and evaluation; ``True`` (timm's
        default training augmentation) or a dict of ``create_transform`` arguments to augment
        while the encoder is in training mode.
    :param tokens: give token features (when their width equals the pooled width).
    """

    modality = "image"

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str,
        data_config: dict,
        freeze: bool = False,
        augment: bool | dict = False,
        tokens: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.num_features = int(model.num_features)
        self.output_dim = int(getattr(model, "head_hidden_size", None) or self.num_features)
        # Some heads (MobileNetV3, ...) widen after pooling; their feature map is then narrower
        # than output_dim and cannot be offered as tokens of width output_dim.
        self.provides_tokens = bool(tokens) and self.output_dim == self.num_features
        self.data_config = dict(data_config)
        self.in_chans = int(self.data_config["input_size"][0])
        fmt = getattr(model, "output_fmt", "NCHW")
        self.channels_last_features = str(getattr(fmt, "value", fmt)) == "NHWC"
        # Preprocessing runs on the CPU (in DataLoader workers), also for a model built under another
        # default device such as create_model(device="meta"): its constants are made on the CPU.
        with torch.device("cpu"):
            self.eval_transform = create_transform(**self.data_config, is_training=False)
            self.batched_eval = BatchedEvalTransform.from_transform(self.eval_transform, self.in_chans)
            if augment:
                extra = augment if isinstance(augment, dict) else {}
                self.train_transform = create_transform(**self.data_config, is_training=True, **extra)
            else:
                self.train_transform = self.eval_transform
        self.frozen = bool(freeze)
        if self.frozen:
            self.model.requires_grad_(False)
            self.model.eval()
        # mmzoo's feature cache: built frozen and without augmentation, its output for an image is fixed
        # even in training mode (the network stays in eval); otherwise mmzoo decides from the modes.
        self.output_cacheable = True if self.frozen and not augment else None

    def train(self, mode: bool = True) -> TimmEncoder:
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    @property
    def raw_input(self) -> RawInput:
        """Images (files, PIL images, arrays) brought to timm's input size and normalisation."""
        channels, height, width = (int(v) for v in self.data_config["input_size"])
        mean, std = (", ".join(f"{v:g}" for v in self.data_config[k]) for k in ("mean", "std"))
        crop = self.data_config.get("crop_pct")
        resize = f"resized (crop {crop:g})" if isinstance(crop, (int, float)) else "resized"
        return RawInput("image", size=(height, width), channels=channels, accepts=("path", "pil", "array", "tensor"),
                        description=f"{resize} by timm's eval transform, normalised with mean ({mean}) and std ({std})")

    def preprocess(self, examples: list) -> Tensor:
        """Image files, PIL images or numpy arrays -> a normalised float batch ``[B, C, H, W]``."""
        transform = self.train_transform if self.training else self.eval_transform
        batched = self.batched_eval if transform is self.eval_transform else None
        images = [
            to_pil(ex, self.in_chans, f"encoder '{self.name}': example {i}", keep_grey=batched is not None)
            for i, ex in enumerate(examples)
        ]
        batch = batched(images) if batched is not None else None
        if batch is not None:
            return batch
        mode = MODES[self.in_chans]
        return torch.stack([transform(im if im.mode == mode else im.convert(mode)) for im in images])

    def forward(self, images: Tensor) -> EncoderOutput:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            features = self.model.forward_features(images)
            pooled = self.model.forward_head(features, pre_logits=True)
        if not self.provides_tokens:
            return EncoderOutput(pooled)
        tokens = self._as_tokens(features)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return EncoderOutput(pooled, tokens, mask)

    def _as_tokens(self, features: Any) -> Tensor:
        if isinstance(features, Tensor) and features.ndim == 3:
            tokens = features
        elif isinstance(features, Tensor) and features.ndim == 4:
            if not self.channels_last_features:
                features = features.permute(0, 2, 3, 1)
            tokens = features.flatten(1, 2)
        else:
            got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise BuildError(
                f"encoder '{self.name}': forward_features gave {got}, which is not a "
                f"[B, T, D] sequence or a [B, C, H, W] map; build it with 'tokens: false'"
            )
        if tokens.shape[-1] != self.output_dim:
            raise BuildError(
                f"encoder '{self.name}': token width {tokens.shape[-1]} differs from the "
                f"pooled width {self.output_dim}; build it with 'tokens: false'"
            )
        return tokens


def check_architecture(arch: str) -> None:
    """Raise :class:`UnknownNameError` (with close matches) unless timm knows ``arch``."""
    if not timm.is_model(arch):
        names = [f"timm/{n}" for n in timm.list_models()]
        raise UnknownNameError(
            f"unknown timm architecture 'timm/{arch}'.{did_you_mean(f'timm/{arch}', names)} "
            f"List them with: mmzoo list 'timm/*'"
        )


def _size_pair(img_size: int | Sequence[int], where: str) -> tuple[int, int]:
    if isinstance(img_size, int) and not isinstance(img_size, bool) and img_size > 0:
        return img_size, img_size
    if (
        isinstance(img_size, Sequence)
        and len(img_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in img_size)
    ):
        return int(img_size[0]), int(img_size[1])
    raise BuildError(f"{where}: img_size must be a positive integer or [height, width], got {img_size!r}")


def _create(arch: str, where: str, img_size: tuple[int, int] | None, kwargs: dict) -> nn.Module:
    try:
        if img_size is not None:
            try:
                return timm.create_model(arch, img_size=img_size, **kwargs)
            except TypeError as exc:
                if "img_size" not in str(exc):
                    raise
                # Convolutional nets take any size: img_size then only sets the preprocessing size.
        return timm.create_model(arch, **kwargs)
    except TypeError as exc:
        raise BuildError(
            f"{where}: timm rejected the parameters: {exc}. Any timm keyword argument "
            f"for this architecture is accepted, plus pretrained, pretrained_file, "
            f"img_size, drop_path_rate, freeze, augment, tokens, mean and std"
        ) from None
    except (OSError, RuntimeError, ValueError, AssertionError) as exc:
        if kwargs.get("pretrained"):
            raise WeightsError(f"{where}: loading the pretrained weights failed: {exc}") from exc
        raise timm_failure(where, _given(kwargs), exc) from exc
    except Exception as exc:  # timm checks few argument kinds: whatever it raises is the user's mistake
        raise timm_failure(where, _given(kwargs), exc) from exc


def _given(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in ("num_classes", "pretrained")}


def data_config_for(
    model: nn.Module, *, in_chans: int, img_size: tuple[int, int] | None, mean: Any, std: Any
) -> dict:
    """timm's data config for ``model``, with the encoder's size and normalisation overrides."""
    config = resolve_data_config({}, model=model)
    height, width = img_size or config["input_size"][1:]
    config["input_size"] = (in_chans, int(height), int(width))
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            config[key] = tuple(float(v) for v in (value if isinstance(value, Sequence) else [value]))
        if len(config[key]) != in_chans:
            average = sum(config[key]) / len(config[key])
            config[key] = (average,) * in_chans
    return config


def make_encoder(
    arch: str,
    *,
    name: str,
    overlay: dict | None,
    img_size: Any,
    drop_path_rate: float | None,
    freeze: bool,
    augment: bool | dict,
    tokens: bool,
    mean: Any,
    std: Any,
    timm_kwargs: dict,
) -> TimmEncoder:
    """Create timm's ``arch`` without classifier (weights from ``overlay`` when given) and wrap it."""
    where = f"encoder '{name}'"
    size = _size_pair(img_size, where) if img_size is not None else None
    check_timm_kwargs(timm_kwargs, where)
    check_normalisation("mean", mean, where)
    check_normalisation("std", std, where)
    kwargs: dict[str, Any] = {"num_classes": 0, **timm_kwargs}
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = float(drop_path_rate)
    if overlay is not None:
        kwargs["pretrained"] = True
        kwargs["pretrained_cfg_overlay"] = {**kwargs.get("pretrained_cfg_overlay", {}), **overlay}
    model = _create(arch, where, size, kwargs)
    in_chans = int(timm_kwargs.get("in_chans", 3))
    try:
        config = data_config_for(model, in_chans=in_chans, img_size=size, mean=mean, std=std)
        return TimmEncoder(model, name=name, data_config=config, freeze=freeze, augment=augment, tokens=tokens)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # e.g. mean/std or augment timm refuses
        raise timm_failure(where, {"mean": mean, "std": std, "augment": augment, **timm_kwargs}, exc) from None


def build_timm_encoder(
    arch: str,
    *,
    pretrained: bool | None = None,
    pretrained_file: str | None = None,
    img_size: int | list[int] | None = None,
    drop_path_rate: float | None = None,
    freeze: bool = False,
    augment: bool | dict = False,
    tokens: bool = True,
    mean: float | list[float] | None = None,
    std: float | list[float] | None = None,
    **timm_kwargs: Any,
) -> TimmEncoder:
    """Build ``timm/<arch>`` (the family factory this plugin registers).

    ``pretrained: true`` loads timm's weights from the local cache (never waiting on an unreachable
    Hub); ``pretrained_file`` loads them from a local ``.safetensors``/``.pth`` file instead, unless
    ``pretrained`` is ``false`` (as when a saved model's own weights are about to be loaded). ``img_size``
    sets the input size (and the model's, for architectures that take one); ``mean``/``std``
    override the normalisation. Every other keyword goes to :func:`timm.create_model`.
    """
    name = f"timm/{arch}"
    check_architecture(arch)
    overlay = None
    if pretrained_file is not None and pretrained is not False:
        if not Path(pretrained_file).is_file():
            raise WeightsError(f"encoder '{name}': pretrained_file '{pretrained_file}' does not exist")
        overlay = {"file": str(pretrained_file)}
    elif pretrained:
        overlay = pretrained_overlay(arch) or {}
    encoder = make_encoder(
        arch,
        name=name,
        overlay=overlay,
        img_size=img_size,
        drop_path_rate=drop_path_rate,
        freeze=freeze,
        augment=augment,
        tokens=tokens,
        mean=mean,
        std=std,
        timm_kwargs=timm_kwargs,
    )
    encoder.resolved_params = forget_initial_weights({"pretrained_file": pretrained_file, **timm_kwargs})
    return encoder


build_timm_encoder.path_params = PATH_PARAMS
