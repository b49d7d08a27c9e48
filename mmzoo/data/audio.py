"""Audio files and values: the audio item convention, decoding files, resampling and writing WAV.

Audio convention for every mmzoo dataset: an example's audio value is a dict
``{"array": np.ndarray float32 of shape [num_samples] (mono, in [-1, 1]), "sampling_rate": int}``.

Files are decoded by `soundfile <https://python-soundfile.readthedocs.io>`_ (libsndfile: WAV of any
sample format, FLAC, OGG/Vorbis, MP3, AIFF...), or by ``scipy.io.wavfile`` (WAV only) where soundfile
is not installed. Resampling goes through mmzoo's one resampler, :func:`mmzoo.data.resample.resample`.
Importing this module does not import torch.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmzoo.data.limits import DataLimits, data_limits
from mmzoo.errors import DatasetError

_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int8): 128.0}


def audio_value(array: np.ndarray, sampling_rate: int) -> dict:
    """Build the audio value of an example: ``{"array": float32 mono, "sampling_rate": int}``."""
    return {"array": np.ascontiguousarray(array, dtype=np.float32), "sampling_rate": int(sampling_rate)}


def read_audio(path: str | os.PathLike, limits: DataLimits | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file as (float32 mono samples in [-1, 1], sampling rate).

    Several channels are averaged to mono. The rate and the duration are checked against ``limits``
    (default: :func:`~mmzoo.data.limits.data_limits`) before the samples are decoded (soundfile) or
    converted (scipy). Any problem is a DatasetError naming the file.
    """
    limits = limits or data_limits()
    path = Path(path)
    if not path.is_file():
        problem = "does not exist" if not path.exists() else "is not a file"
        raise DatasetError(f"cannot read audio file {path}: it {problem}")
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the wheel's libsndfile cannot load on this system
        return _read_with_scipy(path, limits)
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile refuses what it cannot parse, in its own words
        raise DatasetError(f"{path} is not an audio file soundfile can read ({_reason(exc)})") from None
    _check(path, limits, info.frames, info.samplerate)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DatasetError(f"cannot decode audio file {path}: {_reason(exc)}") from None
    return _mono(samples), int(rate)


def _read_with_scipy(path: Path, limits: DataLimits) -> tuple[np.ndarray, int]:
    try:
        from scipy.io import wavfile
    except ImportError:
        raise DatasetError(f"cannot read audio file {path}: decoding audio needs soundfile "
                           "(pip install soundfile) or scipy") from None
    try:
        rate, data = wavfile.read(str(path), mmap=True)  # samples stay on disk until converted
    except ValueError as exc:
        if "mmap" not in str(exc):
            raise DatasetError(f"{path} is not a WAV file scipy can read ({exc})") from None
        rate, data = wavfile.read(str(path))  # 24-bit samples cannot be memory-mapped
    except Exception as exc:
        raise DatasetError(f"{path} is not a WAV file scipy can read ({_reason(exc)})") from None
    data = np.asarray(data).reshape(len(data), -1)
    _check(path, limits, data.shape[0], rate)
    if data.dtype in _INT_SCALE:
        samples = data.astype(np.float32) / np.float32(_INT_SCALE[data.dtype])
    elif data.dtype == np.uint8:  # 8-bit WAV is unsigned
        samples = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.floating):
        samples = data.astype(np.float32)
    else:
        raise DatasetError(f"{path}: unsupported WAV sample type {data.dtype}")
    return _mono(samples), int(rate)


def _check(path: Path, limits: DataLimits, frames: int, rate: Any) -> None:
    try:
        limits.check_audio(int(frames), rate)
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None


def _mono(samples: np.ndarray) -> np.ndarray:
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    if text.startswith("Error opening ") and "': " in text:  # libsndfile repeats the path: keep the reason
        text = text.split("': ", 1)[1]
    return text[:300]


def load_audio(path: str | os.PathLike, sample_rate: int | None = None, *,
               limits: DataLimits | Mapping[str, float] | None = None) -> dict:
    """An audio file as an example's audio value ``{"array": float32 mono, "sampling_rate": int}``.

    With ``sample_rate``, the clip is resampled to it (by :func:`resample`). ``limits`` are the data
    limits to apply (a :class:`~mmzoo.data.limits.DataLimits` or a mapping of overrides; default: those
    in force). Errors are DatasetErrors naming the file.
    """
    limits = limits if isinstance(limits, DataLimits) else data_limits(limits)
    samples, rate = read_audio(path, limits)
    if sample_rate is not None and rate != sample_rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    return audio_value(samples, rate)


def resample(samples: Any, orig_rate: int, target_rate: int) -> Any:
    """mmzoo's one resampler (:func:`mmzoo.data.resample.resample`): a numpy array in, a float32 numpy
    array out; a tensor in, a tensor out. Imports torch on first use."""
    from mmzoo.data.resample import resample as sinc_resample

    return sinc_resample(samples, orig_rate, target_rate)


def write_wav(path: str | Path, samples: np.ndarray, sampling_rate: int) -> None:
    """Write float samples in [-1, 1] as a 16-bit mono PCM WAV file."""
    ints = np.clip(np.round(np.asarray(samples, np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sampling_rate))
        wav.writeframes(ints.tobytes())
