"""Configs and backbones of ``hf/`` encoders: pretrained from files, or random from a ``config:``."""

from __future__ import annotations

from typing import Any

from torch import nn

from mmzoo.errors import BuildError, SpecError, did_you_mean
from mmzoo_transformers.remote_code import refuse_code_settings, refuse_custom_code
from mmzoo_transformers.sources import Source, missing_files_error

MODALITIES = ("text", "audio")
_AUDIO_MAPPINGS = (
    "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_CTC_MAPPING_NAMES",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "MODEL_FOR_AUDIO_XVECTOR_MAPPING_NAMES",
    "MODEL_FOR_AUDIO_FRAME_CLASSIFICATION_MAPPING_NAMES",
)
_TEXT_MAPPINGS = (
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
)


def _model_types(mapping_names: tuple[str, ...]) -> set[str]:
    from transformers.models.auto import modeling_auto

    found: set[str] = set()
    for name in mapping_names:
        found.update(getattr(modeling_auto, name, {}))
    return found


def modality_of_model_type(model_type: str) -> str | None:
    """``"audio"`` or ``"text"`` for a transformers model type that has audio or text heads, else None."""
    if model_type in _model_types(_AUDIO_MAPPINGS):
        return "audio"
    if model_type in _model_types(_TEXT_MAPPINGS):
        return "text"
    return None


def detect_modality(config: Any, requested: str | None, name: str) -> str:
    """``"text"`` or ``"audio"``: ``requested`` if given, else what the config's model type is for."""
    if requested is not None:
        if requested not in MODALITIES:
            raise SpecError(f"{name}: modality must be one of {', '.join(MODALITIES)}, got {requested!r}")
        return requested
    found = modality_of_model_type(getattr(config, "model_type", ""))
    if found is not None:
        return found
    model_type = getattr(config, "model_type", "")
    raise BuildError(
        f"{name}: cannot tell whether model type '{model_type}' encodes text or audio; pass "
        f"'modality: text' or 'modality: audio' (images: use the timm/ encoders)"
    )


def _check_override_keys(reference: Any, overrides: dict, name: str) -> None:
    known = set(reference.to_dict()) | {k for k in dir(reference) if not k.startswith("_")}
    for key in overrides:
        if key not in known:
            hint = did_you_mean(key, sorted(k for k in reference.to_dict()))
            raise SpecError(f"{name}.config.{key}: not a setting of {type(reference).__name__}.{hint}")


def config_from_spec(overrides: dict, name: str):
    """A config built from ``{"model_type": ..., **settings}`` (no files needed)."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    settings = dict(overrides)
    refuse_code_settings(settings, name)
    model_type = settings.pop("model_type")
    if model_type not in CONFIG_MAPPING_NAMES:
        raise SpecError(
            f"{name}.config.model_type: unknown model type {model_type!r}."
            f"{did_you_mean(str(model_type), CONFIG_MAPPING_NAMES)}"
        )
    _check_override_keys(AutoConfig.for_model(model_type), settings, name)
    try:
        return AutoConfig.for_model(model_type, **settings)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{name}.config: {model_type} rejects these settings: {exc}") from None


def config_from_source(source: Source, overrides: dict | None, name: str):
    """The config saved with ``source``, with ``overrides`` applied."""
    from transformers import AutoConfig

    refuse_custom_code(source.path, name, describe(source))
    try:
        config = AutoConfig.from_pretrained(source.path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise missing_files_error(source, "model config (config.json)", exc) from exc
    if overrides:
        refuse_code_settings(overrides, name)
        _check_override_keys(config, overrides, name)
        for key, value in overrides.items():
            setattr(config, key, value)
    return config


def describe(source: Source) -> str:
    """Where ``source``'s files are, for messages."""
    if source.revision is None:
        return f"local folder {source.path}"
    return f"the Hub snapshot of {source.name} at {source.revision}"


def random_backbone(config: Any, name: str) -> nn.Module:
    """A randomly initialised backbone for ``config`` (the encoder half of encoder-decoders)."""
    from transformers import AutoModel

    try:
        model = AutoModel.from_config(config, trust_remote_code=False)
    except (ValueError, TypeError, KeyError) as exc:
        raise BuildError(f"{name}: transformers cannot build a model from this config: {exc}") from None
    return _encoder_half(model, config)


def pretrained_backbone(source: Source, config: Any, name: str) -> nn.Module:
    """The backbone with the weights in ``source`` (safetensors only)."""
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(
            source.path, config=config, use_safetensors=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise missing_files_error(source, "model weights (model.safetensors)", exc) from exc
    return _encoder_half(model, config)


def _encoder_half(model: nn.Module, config: Any) -> nn.Module:
    if getattr(config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    return model
