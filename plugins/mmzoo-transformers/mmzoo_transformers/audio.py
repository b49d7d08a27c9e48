"""Audio encoders: a transformers speech backbone and its feature extractor, on raw waveforms.

Waveforms arrive as audio files (a ``str`` or ``pathlib.Path``, decoded by :func:`mmzoo.load_audio`),
1-D arrays at the feature extractor's sampling rate, ``(array, rate)`` pairs or
``{"array": ..., "sampling_rate": ...}`` dicts (the Hugging Face datasets layout); other rates are
resampled (by mmzoo's one resampler, :func:`mmzoo.resample_audio`), several channels are mixed to mono.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmzoo import RawInput, data_limits, load_audio, resample_audio
from mmzoo.errors import BuildError, DatasetError
from mmzoo.outputs import EncoderOutput

POOLINGS = ("mean", "cls")
_INT_SCALE = {np.dtype(np.int8): 128.0, np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def feature_extractor_for(config: Any, name: str):
    """A feature extractor matching ``config`` with no files (for ``config:``-built models)."""
    import transformers
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING_NAMES

    class_name = FEATURE_EXTRACTOR_MAPPING_NAMES.get(config.model_type)
    if class_name is None:
        raise BuildError(
            f"encoder '{name}': transformers has no feature extractor for model type "
            f"'{config.model_type}'; this is not an audio model"
        )
    cls = getattr(transformers, class_name)
    kwargs: dict[str, Any] = {}
    if class_name == "WhisperFeatureExtractor":
        extractor = cls(feature_size=config.num_mel_bins)
        # The encoder takes exactly 2 * max_source_positions frames: size the window to match.
        extractor.nb_max_frames = 2 * config.max_source_positions
        extractor.n_samples = extractor.nb_max_frames * extractor.hop_length
        extractor.chunk_length = extractor.n_samples / extractor.sampling_rate
        return extractor
    if class_name == "ASTFeatureExtractor":
        kwargs.update(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    elif class_name == "Wav2Vec2FeatureExtractor":
        kwargs["return_attention_mask"] = getattr(config, "feat_extract_norm", "layer") == "layer"
    return cls(**kwargs)


def to_mono(example: Any, target_rate: int, where: str, max_seconds: float | None = None) -> np.ndarray:
    """One raw example -> a float32 mono waveform at ``target_rate``.

    A clip to resample is first cut to ``max_seconds``, then checked against the data limits
    (:mod:`mmzoo.data.limits`: its rate and duration), so resampling never asks for gigabytes.
    """
    rate = target_rate
    if isinstance(example, (str, os.PathLike)):  # for an audio encoder a string is a file, never text
        try:
            example = load_audio(example)
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
    if isinstance(example, dict):
        if "array" not in example:
            raise DatasetError(
                f"{where}: an audio dict needs 'array' (and 'sampling_rate'), got keys {sorted(example)}"
            )
        example, rate = example["array"], example.get("sampling_rate", target_rate)
    elif isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], int):
        example, rate = example
    if type(example).__module__.startswith("torch"):
        example = example.detach().cpu().numpy()
    wave = np.asarray(example)
    if wave.dtype in _INT_SCALE:
        wave = wave.astype(np.float32) / _INT_SCALE[wave.dtype]
    elif not np.issubdtype(wave.dtype, np.floating):
        raise DatasetError(f"{where}: expected a waveform of floats or int16 samples, got dtype {wave.dtype}")
    if wave.ndim == 2:  # channels x samples or samples x channels: mix the shorter axis away
        wave = wave.mean(axis=int(np.argmin(wave.shape)))
    if wave.ndim != 1 or wave.size == 0:
        raise DatasetError(
            f"{where}: expected a 1-D waveform (or channels x samples), got shape {wave.shape}"
        )
    if not isinstance(rate, int) or rate <= 0:
        raise DatasetError(f"{where}: sampling_rate must be a positive integer, got {rate!r}")
    if rate != target_rate:
        if max_seconds is not None:  # no work on audio that is cut off anyway
            wave = wave[: max(1, int(max_seconds * rate))]
        try:  # a low or odd rate must not make resampling ask for gigabytes
            data_limits().check_audio(wave.size, rate)
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        wave = resample_audio(np.asarray(wave, np.float32), rate, target_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


class HFAudioEncoder(nn.Module):
    """Waveforms -> pooled ``[B, hidden]`` plus frame tokens ``[B, T, hidden]`` with a mask.

    :param backbone: a transformers speech model (wav2vec2, HuBERT, Whisper encoder, AST, ...).
    :param feature_extractor: its feature extractor (sets the sampling rate).
    :param pooling: ``mean`` over real frames, or ``cls`` (the model's pooler output, else frame 0).
    :param max_seconds: truncate longer clips (``None``: keep everything the model takes).
    """

    modality = "audio"
    provides_tokens = True

    def __init__(
        self,
        backbone: nn.Module,
        feature_extractor: Any,
        *,
        name: str,
        pooling: str = "mean",
        max_seconds: float | None = None,
        freeze: bool = False,
        resolved_params: dict | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise BuildError(
                f"encoder '{name}': pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}"
            )
        if max_seconds is not None and (not isinstance(max_seconds, (int, float)) or max_seconds <= 0):
            raise BuildError(f"encoder '{name}': max_seconds must be a positive number, got {max_seconds!r}")
        self.backbone = backbone
        self.feature_extractor = feature_extractor
        self.name = name
        self.pooling = pooling
        self.max_seconds = max_seconds
        self.sampling_rate = int(feature_extractor.sampling_rate)
        self.output_dim = int(backbone.config.hidden_size)
        accepted = inspect.signature(backbone.forward).parameters
        self._input_name = next(n for n in ("input_values", "input_features") if n in accepted)
        # Models trained without an attention mask (group-norm wav2vec2) must not receive one.
        self._pass_mask = "attention_mask" in accepted and bool(
            getattr(feature_extractor, "return_attention_mask", False)
        )
        self._pads_to_window = type(feature_extractor).__name__.startswith("Whisper")
        self.resolved_params = dict(resolved_params or {})
        self.frozen = bool(freeze)
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> HFAudioEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    @property
    def raw_input(self) -> RawInput:
        """Waveforms (files, arrays, audio dicts) at the feature extractor's sampling rate."""
        extractor = type(self.feature_extractor).__name__
        return RawInput("audio", sample_rate=self.sampling_rate, max_seconds=self.max_seconds,
                        accepts=("path", "audio-dict", "array", "tensor"),
                        description=f"mono, features by transformers' {extractor}")

    def preprocess(self, examples: list) -> dict[str, Tensor]:
        """Audio files or raw waveforms -> the feature extractor's tensors (and an ``attention_mask``)."""
        if not examples:
            raise DatasetError(f"encoder '{self.name}': preprocess got no examples")
        waves = [
            to_mono(ex, self.sampling_rate, f"encoder '{self.name}': example {i}", self.max_seconds)
            for i, ex in enumerate(examples)
        ]
        if self.max_seconds is not None:
            waves = [w[: max(1, int(self.max_seconds * self.sampling_rate))] for w in waves]
        kwargs: dict[str, Any] = {"sampling_rate": self.sampling_rate, "return_tensors": "pt"}
        if "attention_mask" in self.feature_extractor.model_input_names or self._pads_to_window:
            kwargs["return_attention_mask"] = True
        if (
            not self._pads_to_window
            and "padding" in inspect.signature(self.feature_extractor.__call__).parameters
        ):
            kwargs["padding"] = True
        return dict(self.feature_extractor(waves, **kwargs))

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        features = inputs[self._input_name]
        attention = inputs.get("attention_mask")
        call = {self._input_name: features}
        if self._pass_mask and attention is not None:
            call["attention_mask"] = attention
        out = self.backbone(**call)  # frozen: fixed weights record nothing; attributions still pass through
        hidden = out.last_hidden_state
        mask = self._frame_mask(attention, hidden)
        if self.pooling == "cls":
            pooler = getattr(out, "pooler_output", None)
            pooled = (
                pooler if isinstance(pooler, Tensor) and pooler.shape[-1] == self.output_dim else hidden[:, 0]
            )
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return EncoderOutput(pooled, hidden, mask)

    def _frame_mask(self, attention: Tensor | None, hidden: Tensor) -> Tensor:
        batch, frames = hidden.shape[:2]
        full = torch.ones(batch, frames, dtype=torch.bool, device=hidden.device)
        lengths_of = getattr(self.backbone, "_get_feat_extract_output_lengths", None)
        if attention is None or lengths_of is None:
            return full
        lengths = lengths_of(attention.sum(dim=-1)).to(hidden.device).clamp(1, frames)
        return torch.arange(frames, device=hidden.device).unsqueeze(0) < lengths.unsqueeze(1)
