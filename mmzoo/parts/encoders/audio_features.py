"""Audio signal processing in plain torch: mel filterbank, log-mel and MFCC (resampling: :mod:`mmzoo.data.resample`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def hz_to_mel(freq: Tensor) -> Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + freq / 700.0)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, sample_rate: int, n_mels: int, f_min: float, f_max: float) -> Tensor:
    """Triangular filters ``[n_mels, n_freqs]`` equally spaced on the mel scale, each of unit area."""
    # No value is read back to Python (no .item(), no branch on data), so the filters can also be
    # built on the meta device, where a model is only a skeleton of shapes.
    bins = torch.linspace(0.0, sample_rate / 2.0, n_freqs, dtype=torch.float64)
    low, high = (2595.0 * math.log10(1.0 + f / 700.0) for f in (f_min, f_max))
    edges = mel_to_hz(torch.linspace(low, high, n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    # Filters narrower than a frequency bin would be empty; give them their nearest bin.
    empty = (filters.sum(dim=1) == 0).unsqueeze(1)
    nearest = (bins.unsqueeze(0) - centre).abs().argmin(dim=1, keepdim=True)
    fallback = (torch.arange(n_freqs, device=bins.device) == nearest).to(filters.dtype)
    filters = torch.where(empty, fallback, filters)
    return (filters / filters.sum(dim=1, keepdim=True)).to(torch.float32)


def dct_matrix(n_mfcc: int, n_mels: int) -> Tensor:
    """Orthonormal DCT-II ``[n_mfcc, n_mels]``: MFCCs are ``dct @ log_mel``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64).unsqueeze(1)
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.to(torch.float32)


class SpectralFrontend(nn.Module):
    """Waveforms ``[B, N]`` -> log-mel ``[B, n_mels, T]`` or MFCC ``[B, n_mfcc, T]``.

    Frames are centred on multiples of ``hop_length`` with zeros (not reflections) beyond the
    ends, so a waveform gives the same frames alone or zero-padded inside a batch; a waveform of
    ``L`` samples has ``1 + L // hop_length`` frames. Holds no trainable state.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, features: str,
                 n_mfcc: int, f_min: float, f_max: float) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.features = n_fft, hop_length, features
        # Buffers are derived from the parameters, so they stay out of the state_dict.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(n_fft // 2 + 1, sample_rate, n_mels, f_min, f_max),
                             persistent=False)
        self.register_buffer("dct", dct_matrix(n_mfcc, n_mels), persistent=False)

    @property
    def num_features(self) -> int:
        return self.dct.shape[0] if self.features == "mfcc" else self.filters.shape[0]

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Number of frames of waveforms with ``lengths`` samples."""
        return 1 + torch.div(lengths, self.hop_length, rounding_mode="floor")

    def forward(self, waveform: Tensor) -> Tensor:
        half = self.n_fft // 2
        padded = torch.nn.functional.pad(waveform.float(), (half, self.n_fft - half))
        spectrum = torch.stft(padded, self.n_fft, hop_length=self.hop_length, window=self.window,
                              center=False, return_complex=True)
        # |X|^2 without the square root of abs() (3x faster on CPU; equal to within 2 ulp).
        power = spectrum.real.square() + spectrum.imag.square()
        log_mel = torch.log(torch.matmul(self.filters, power) + 1e-6)
        return torch.matmul(self.dct, log_mel) if self.features == "mfcc" else log_mel
