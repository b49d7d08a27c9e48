"""``mel-cnn``: waveform -> log-mel spectrogram or MFCC (computed with torch) -> conv net."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmzoo.data.audio import load_audio
from mmzoo.data.limits import data_limits
from mmzoo.data.resample import resample
from mmzoo.errors import BuildError, DatasetError
from mmzoo.outputs import EncoderOutput
from mmzoo.parts._common import bad_example, choice, fraction, int_list, masked_mean, positive_int
from mmzoo.parts.base import Encoder
from mmzoo.parts.encoders.audio_features import SpectralFrontend
from mmzoo.rawinput import RawInput

PART = "encoder 'mel-cnn'"
_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int8): 128.0}


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels at every (frequency, time) cell: independent of padding."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _AudioBlock(nn.Module):
    """Strided 3x3 conv halving frequency and time, channel norm, GELU; padded frames zeroed."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.norm = _ChannelNorm(c_out)
        self.act = nn.GELU()

    def forward(self, x: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        x = self.act(self.norm(self.conv(x)))
        frames = torch.div(frames + 1, 2, rounding_mode="floor")
        return _zero_padding(x, frames), frames


def _time_mask(frames: Tensor, total: int) -> Tensor:
    return torch.arange(total, device=frames.device).unsqueeze(0) < frames.unsqueeze(1)


def _zero_padding(x: Tensor, frames: Tensor) -> Tensor:
    # Zeroed padding looks exactly like the conv's own zero padding at the end of a short clip,
    # so a clip gives the same features alone or padded inside a batch.
    return x * _time_mask(frames, x.shape[-1]).view(x.shape[0], 1, 1, -1).to(x.dtype)


class MelCNNEncoder(Encoder):
    """Waveforms -> pooled ``[B, output_dim]`` and tokens over time ``[B, T', output_dim]`` + mask.

    ``preprocess`` takes audio files (a ``str`` or ``pathlib.Path``: WAV, FLAC, OGG..., see
    :mod:`mmzoo.data.audio`), 1-D waveforms (numpy, tensor or list, at ``sample_rate``), multi-channel
    arrays (mixed to mono) or dicts ``{"array": ..., "sampling_rate": ...}`` (resampled when the
    rate differs), truncates to ``max_seconds`` and pads to the longest; it returns
    ``{"waveform": FloatTensor[B, N], "lengths": LongTensor[B]}``. ``forward`` also accepts a
    plain ``[B, N]`` tensor of equal-length clips. Each conv block halves time, so there are about
    ``N / hop_length / 2**len(channels)`` tokens; padding never changes the result.
    """

    modality = "audio"
    provides_tokens = True

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        features: str = "logmel",
        n_mfcc: int = 20,
        n_fft: int = 400,
        hop_length: int = 160,
        f_min: float = 0.0,
        f_max: float | None = None,
        channels: Sequence[int] = (32, 64, 128),
        output_dim: int = 128,
        max_seconds: float | None = 30.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.sample_rate = positive_int(PART, "sample_rate", sample_rate)
        self.output_dim = positive_int(PART, "output_dim", output_dim)
        features = choice(PART, "features", features, ("logmel", "mfcc"))
        n_mels, n_fft = positive_int(PART, "n_mels", n_mels), positive_int(PART, "n_fft", n_fft)
        n_mfcc = positive_int(PART, "n_mfcc", n_mfcc)
        if features == "mfcc" and n_mfcc > n_mels:
            raise BuildError(f"{PART}: 'n_mfcc' ({n_mfcc}) cannot exceed 'n_mels' ({n_mels}).")
        f_max = self.sample_rate / 2 if f_max is None else f_max
        if not 0 <= f_min < f_max <= self.sample_rate / 2:
            raise BuildError(
                f"{PART}: need 0 <= f_min < f_max <= sample_rate / 2 ({self.sample_rate / 2:g}), "
                f"got f_min={f_min!r}, f_max={f_max!r}."
            )
        if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
            raise BuildError(f"{PART}: 'max_seconds' must be a positive number or null, got {max_seconds!r}.")
        self.max_seconds = max_seconds
        hop_length = positive_int(PART, "hop_length", hop_length)
        self.frontend = SpectralFrontend(self.sample_rate, n_fft, hop_length, n_mels, features, n_mfcc,
                                         float(f_min), float(f_max))
        widths = int_list(PART, "channels", channels, allow_empty=False)
        self.blocks = nn.ModuleList()
        width, height = 1, self.frontend.num_features
        for size in widths:
            self.blocks.append(_AudioBlock(width, size))
            width, height = size, (height + 1) // 2
        self.dropout = nn.Dropout(fraction(PART, "dropout", dropout))
        self.proj = nn.Linear(width * height, self.output_dim)
        self.norm = nn.LayerNorm(self.output_dim)

    @property
    def raw_input(self) -> RawInput:
        """Waveforms (files, arrays, tensors, audio dicts), resampled to ``sample_rate``."""
        return RawInput("audio", sample_rate=self.sample_rate, max_seconds=self.max_seconds,
                        accepts=("path", "audio-dict", "array", "tensor", "list"),
                        description=f"mono, {self.frontend.features} features computed in torch")

    # ---- preprocessing ------------------------------------------------------------------------
    def preprocess(self, examples: list) -> dict[str, Tensor]:
        """Turn waveforms into ``{"waveform": [B, N], "lengths": [B]}`` at ``sample_rate``."""
        if not examples:
            raise DatasetError(f"{PART}: preprocess got an empty list of examples.")
        clips = [self._clip(i, example) for i, example in enumerate(examples)]
        lengths = torch.tensor([clip.shape[0] for clip in clips], dtype=torch.long)
        waveform = torch.zeros(len(clips), int(lengths.max()), dtype=torch.float32)
        for i, clip in enumerate(clips):
            waveform[i, : clip.shape[0]] = clip
        return {"waveform": waveform, "lengths": lengths}

    def _clip(self, index: int, example: Any) -> Tensor:
        rate = self.sample_rate
        if isinstance(example, (str, os.PathLike)):  # for an audio encoder a string is a file, never text
            try:
                example = load_audio(example)
            except DatasetError as exc:
                raise bad_example(PART, index, str(exc)) from None
        if isinstance(example, Mapping):
            if "array" not in example:
                raise bad_example(PART, index, f"a dict waveform needs an 'array' key, got {list(example)}")
            rate = example.get("sampling_rate", example.get("sample_rate", rate))
            example = example["array"]
            if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
                raise bad_example(PART, index, f"'sampling_rate' must be a positive integer, got {rate!r}")
        clip = self._mono(index, self._as_float(index, example))
        if clip.shape[0] == 0:
            raise bad_example(PART, index, "the waveform is empty")
        if not np.isfinite(clip.numpy()).all():  # numpy's check is ~10x faster than torch's on one thread
            raise bad_example(PART, index, "the waveform contains NaN or infinite values")
        if self.max_seconds is not None:  # truncate before resampling: no work on dropped audio
            clip = clip[: max(1, round(self.max_seconds * int(rate)))]
        if int(rate) != self.sample_rate:  # a low or odd rate must not make resampling ask for gigabytes
            try:
                data_limits().check_audio(clip.shape[0], rate)
            except DatasetError as exc:
                raise bad_example(PART, index, str(exc)) from None
        clip = resample(clip, int(rate), self.sample_rate)
        if self.max_seconds is not None:
            clip = clip[: max(1, round(self.max_seconds * self.sample_rate))]
        return clip

    @staticmethod
    def _as_float(index: int, example: Any) -> Tensor:
        if isinstance(example, Tensor):
            example = example.detach().cpu().numpy()
        try:
            array = np.asarray(example)
        except (TypeError, ValueError) as exc:
            message = f"expected a waveform array, got {type(example).__name__}"
            raise bad_example(PART, index, message) from exc
        if array.dtype in _INT_SCALE:
            return torch.from_numpy(array.astype(np.float32) / _INT_SCALE[array.dtype])
        if array.dtype == np.uint8:
            return torch.from_numpy((array.astype(np.float32) - 128.0) / 128.0)
        if not np.issubdtype(array.dtype, np.number):
            raise bad_example(PART, index, f"expected numbers, got an array of {array.dtype}")
        return torch.from_numpy(array.astype(np.float32))

    @staticmethod
    def _mono(index: int, clip: Tensor) -> Tensor:
        if clip.dim() == 1:
            return clip
        if clip.dim() == 2 and min(clip.shape) <= 8:
            channel_axis = 0 if clip.shape[0] <= clip.shape[1] else 1
            return clip.mean(dim=channel_axis)
        message = f"expected a 1-D waveform or [channels, samples], got {list(clip.shape)}"
        raise bad_example(PART, index, message)

    # ---- model -----------------------------------------------------------------------------------
    def forward(self, inputs: Tensor | Mapping[str, Tensor]) -> EncoderOutput:
        if isinstance(inputs, Mapping):
            waveform, lengths = inputs["waveform"], inputs["lengths"]
        else:
            waveform = inputs
            lengths = torch.full((inputs.shape[0],), inputs.shape[-1], dtype=torch.long, device=inputs.device)
        if waveform.dim() != 2:
            raise DatasetError(f"{PART}: expected waveforms [batch, samples], got {list(waveform.shape)}.")
        features = self.frontend(waveform)  # [B, F, T]
        frames = self.frontend.frame_lengths(lengths.to(features.device))
        x = _zero_padding(features.unsqueeze(1), frames)
        for block in self.blocks:
            x, frames = block(x, frames)
        batch, width, height, time = x.shape
        cells = x.permute(0, 3, 1, 2).reshape(batch, time, width * height)
        tokens = self.norm(self.proj(self.dropout(cells)))
        mask = _time_mask(frames, time)
        return EncoderOutput(pooled=masked_mean(tokens, mask), tokens=tokens, mask=mask)
