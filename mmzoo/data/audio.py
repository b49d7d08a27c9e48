"""Waveform helpers: the audio item convention, WAV reading (stdlib ``wave``) and resampling (numpy).

Audio convention for every mmzoo dataset: an example's audio value is a dict
``{"array": np.ndarray float32 of shape [num_samples] (mono, in [-1, 1]), "sampling_rate": int}``.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np

from mmzoo.data.limits import DataLimits, data_limits
from mmzoo.errors import DatasetError


def audio_value(array: np.ndarray, sampling_rate: int) -> dict:
    """Build the audio value of an example: ``{"array": float32 mono, "sampling_rate": int}``."""
    return {"array": np.ascontiguousarray(array, dtype=np.float32), "sampling_rate": int(sampling_rate)}


def read_wav(path: str | Path, limits: DataLimits | None = None) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file as (float32 mono samples in [-1, 1], sampling rate).

    Supports 8, 16, 24 and 32-bit integer PCM; several channels are averaged to mono.
    Raises DatasetError naming the file if it is not such a WAV file, or if the rate or duration
    its header declares is outside ``limits`` (default: :func:`~mmzoo.data.limits.data_limits`),
    checked before any sample is read.
    """
    limits = limits or data_limits()
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            try:
                limits.check_audio(wav.getnframes(), rate)
            except DatasetError as exc:
                raise DatasetError(f"{path}: {exc}") from None
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, struct.error, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable PCM WAV file ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:  # pragma: no cover - wave rejects other widths itself
        raise DatasetError(f"{path}: unsupported WAV sample width of {width} bytes")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32, copy=False), rate


def write_wav(path: str | Path, samples: np.ndarray, sampling_rate: int) -> None:
    """Write float samples in [-1, 1] as a 16-bit mono PCM WAV file."""
    ints = np.clip(np.round(np.asarray(samples, np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sampling_rate))
        wav.writeframes(ints.tobytes())


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling of a 1-D signal by the FFT method; returns float32.

    The signal is zero-padded to a length whose FFTs (before and after) are fast and whose
    resampled length is an integer, then the output is cut to ``round(len * target / orig)``.
    Frequencies above the lower of the two Nyquist frequencies are removed. Suited to the clips
    mmzoo handles (utterances, short recordings); the padding keeps the end from wrapping onto
    the start.
    """
    for rate in (orig_rate, target_rate):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise DatasetError(f"cannot resample: sampling rates must be positive integers, got {rate!r}")
    x = np.asarray(samples, dtype=np.float64)
    if orig_rate == target_rate or len(x) == 0:
        return x.astype(np.float32)
    n_in = len(x)
    n_out = max(1, int(round(n_in * target_rate / orig_rate)))
    step_in, step_out = _rate_ratio(orig_rate, target_rate)
    blocks = 1 << int(np.ceil(np.log2(max(1.0, (n_in + 16) / step_in))))  # power of two, some zero padding
    n_pad, n_pad_out = step_in * blocks, step_out * blocks
    spectrum = np.fft.rfft(x, n_pad)
    keep = min(len(spectrum), n_pad_out // 2 + 1)
    out_spec = np.zeros(n_pad_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spectrum[:keep]
    if keep == len(spectrum) and n_pad % 2 == 0:
        out_spec[keep - 1] *= 0.5  # split the old Nyquist bin between its two mirror images
    if keep == n_pad_out // 2 + 1 and n_pad_out % 2 == 0:
        out_spec[-1] = out_spec[-1].real  # the Nyquist bin of an even-length real signal is real
    y = np.fft.irfft(out_spec, n_pad_out) * (n_pad_out / n_pad)
    return y[:n_out].astype(np.float32)


def _rate_ratio(orig_rate: int, target_rate: int) -> tuple[int, int]:
    """Smallest (input, output) block lengths with the same duration at the two rates."""
    g = math.gcd(int(orig_rate), int(target_rate))
    return int(orig_rate) // g, int(target_rate) // g
