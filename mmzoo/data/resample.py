"""The one audio resampler in mmzoo: a windowed-sinc filter in torch, for any pair of rates.

Datasets (the ``manifest``'s ``sample_rate``, the av-digits speech bank), file decoding
(:func:`mmzoo.load_audio`) and the encoders (``mel-cnn``, the ``hf/`` audio encoders) all resample
through :func:`resample`, so a clip gives the same samples whichever of them brings it to a rate.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from mmzoo.errors import DatasetError


def _sinc_kernel(positions: Tensor, taps: Tensor, cutoff: float, half_width: float) -> Tensor:
    """Weights of input samples ``taps`` for output samples at ``positions`` (input-sample units)."""
    distance = positions.unsqueeze(1) - taps
    hann = 0.5 * (1.0 + torch.cos(math.pi * distance / half_width))
    window = torch.where(distance.abs() <= half_width, hann, 0.0)
    return (2.0 * cutoff * torch.sinc(2.0 * cutoff * distance) * window).to(torch.float32)


def resample(waveform: Tensor | np.ndarray, orig_rate: int, new_rate: int, *, zero_crossings: int = 16,
             rolloff: float = 0.95) -> Tensor | np.ndarray:
    """Resample a 1-D waveform from ``orig_rate`` to ``new_rate`` Hz with a windowed-sinc filter.

    Every output sample is the input convolved with a Hann-windowed sinc low-pass centred on its
    exact position, with the cut-off at ``rolloff`` times the lower Nyquist frequency (so
    downsampling does not alias). Works for any pair of rates; the input is zero outside its
    ends. The output has ``ceil(len * new_rate / orig_rate)`` samples. A numpy array gives a float32
    numpy array, a tensor a tensor (the same one when the rates are equal).
    """
    for rate in (orig_rate, new_rate):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise DatasetError(f"cannot resample: sampling rates must be positive integers, got {rate!r}")
    orig_rate, new_rate = int(orig_rate), int(new_rate)
    if not isinstance(waveform, Tensor):
        array = np.asarray(waveform)
        if orig_rate == new_rate or array.size == 0:
            return array.astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return resample(tensor, orig_rate, new_rate, zero_crossings=zero_crossings, rolloff=rolloff).numpy()
    if orig_rate == new_rate:
        return waveform
    if waveform.dim() != 1:
        raise DatasetError(f"resample expects a 1-D waveform, got shape {list(waveform.shape)}")
    n_out = math.ceil(waveform.shape[0] * new_rate / orig_rate)
    cutoff = 0.5 * min(1.0, new_rate / orig_rate) * rolloff  # cycles per input sample
    half_width = zero_crossings / (2.0 * cutoff)  # in input samples
    common = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // common, new_rate // common
    signal = waveform.to(torch.float32)
    if new * (orig + 2 * half_width) <= 4_000_000:
        out = _resample_polyphase(signal, orig, new, n_out, cutoff, half_width)
    else:
        out = _resample_direct(signal, orig, new, n_out, cutoff, half_width)
    return out.to(waveform.dtype if waveform.is_floating_point() else torch.float32)


def _resample_polyphase(signal: Tensor, orig: int, new: int, n_out: int, cutoff: float,
                        half_width: float) -> Tensor:
    # Output m * new + j sits at input m * orig + j * orig / new: its filter depends on j only,
    # so ``new`` kernels applied with stride ``orig`` (one conv1d) produce every output.
    reach = math.ceil(half_width)
    positions = torch.arange(new, dtype=torch.float64) * orig / new
    base = positions.floor()
    offsets = torch.arange(-reach, reach + 2, dtype=torch.float64)
    weights = _sinc_kernel(positions, base.unsqueeze(1) + offsets, cutoff, half_width)
    width = orig + 2 * reach + 1
    kernels = torch.zeros(new, width)
    columns = base.long().unsqueeze(1) + torch.arange(offsets.shape[0])  # column 0 = input m*orig - reach
    kernels.scatter_(1, columns, weights)
    blocks = math.ceil(n_out / new)
    padded = torch.nn.functional.pad(signal, (reach, max(0, blocks * orig + width - signal.shape[0] - reach)))
    out = torch.nn.functional.conv1d(padded.view(1, 1, -1), kernels.unsqueeze(1), stride=orig)
    return out[0, :, :blocks].t().reshape(-1)[:n_out]


def _resample_direct(signal: Tensor, orig: int, new: int, n_out: int, cutoff: float, half_width: float,
                     chunk: int = 8192) -> Tensor:
    # Rates with no small common ratio (16000 -> 16001): one filter per output sample.
    reach = math.ceil(half_width)
    offsets = torch.arange(-reach, reach + 2, dtype=torch.float64)
    padded = torch.nn.functional.pad(signal, (reach + 1, reach + 2))
    out = torch.empty(n_out, dtype=torch.float32)
    for start in range(0, n_out, chunk):
        positions = torch.arange(start, min(start + chunk, n_out), dtype=torch.float64) * orig / new
        taps = positions.floor().unsqueeze(1) + offsets  # input sample index of every tap
        kernel = _sinc_kernel(positions, taps, cutoff, half_width)
        out[start : start + positions.shape[0]] = (padded[(taps + reach + 1).long()] * kernel).sum(dim=1)
    return out
