"""mel-cnn and its signal processing: resampling, mel filterbank, log-mel/MFCC, padding invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmzoo.data.resample import resample
from mmzoo.errors import BuildError, DatasetError
from mmzoo.parts.encoders.audio_features import (
    SpectralFrontend,
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)
from mmzoo.parts.encoders.mel_cnn import MelCNNEncoder

SMALL = {"n_mels": 16, "channels": [4, 8], "output_dim": 6}


def tone(freq: float, rate: int, seconds: float) -> torch.Tensor:
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return torch.sin(2 * math.pi * freq * t).float()


# ---- resampling --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 16000), (22050, 16000), (16000, 16001)])
def test_resample_reproduces_an_in_band_tone(orig, new):
    out = resample(tone(440.0, orig, 0.25), orig, new)
    assert out.shape[0] == math.ceil(int(orig * 0.25) * new / orig)
    expected = tone(440.0, new, out.shape[0] / new)[: out.shape[0]]
    interior = slice(200, -200)  # the ends see the zeros beyond the clip
    assert (out[interior] - expected[interior]).abs().max() < 2e-3


def test_resample_removes_frequencies_above_the_new_nyquist():
    out = resample(tone(7000.0, 16000, 0.5), 16000, 8000)  # 7 kHz cannot exist at 8 kHz: no alias at 1 kHz
    assert out[200:-200].abs().max() < 1e-2


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 22050), (48000, 44100)])
def test_polyphase_resampling_matches_the_per_sample_filter(orig, new):
    from mmzoo.data.resample import _resample_direct, _resample_polyphase

    x = torch.randn(3001)
    common = math.gcd(orig, new)
    cutoff = 0.5 * min(1.0, new / orig) * 0.95
    n_out = math.ceil(3001 * new / orig)
    args = (x, orig // common, new // common, n_out, cutoff, 16 / (2 * cutoff))
    fast, slow = _resample_polyphase(*args), _resample_direct(*args)
    assert fast.shape == slow.shape == (n_out,)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_resample_same_rate_is_identity():
    x = torch.randn(100)
    assert resample(x, 16000, 16000) is x


# ---- features ----------------------------------------------------------------------------------------


def test_mel_scale_round_trips_and_filters_are_normalised_triangles():
    freqs = torch.tensor([0.0, 440.0, 8000.0], dtype=torch.float64)
    assert torch.allclose(mel_to_hz(hz_to_mel(freqs)), freqs)
    filters = mel_filterbank(201, 16000, 40, 0.0, 8000.0)
    assert filters.shape == (40, 201) and bool((filters >= 0).all())
    assert torch.allclose(filters.sum(dim=1), torch.ones(40))
    centres = filters.argmax(dim=1)
    assert bool((centres[1:] >= centres[:-1]).all())  # ordered by frequency
    # Many mels on a short FFT: no filter is left empty.
    assert bool((mel_filterbank(33, 16000, 64, 0.0, 8000.0).sum(dim=1) > 0.99).all())


def test_dct_is_orthonormal():
    d = dct_matrix(24, 24)
    assert torch.allclose(d @ d.t(), torch.eye(24), atol=1e-5)


def test_log_mel_of_a_tone_peaks_in_the_right_band_and_frames_follow_the_hop():
    frontend = SpectralFrontend(16000, 400, 160, 40, "logmel", 13, 0.0, 8000.0)
    wave = tone(1000.0, 16000, 0.5).unsqueeze(0)
    features = frontend(wave)
    assert features.shape == (1, 40, 1 + 8000 // 160)
    expected_band = int(frontend.filters[:, int(1000 / 8000 * 200)].argmax())
    assert int(features[0, :, 10:-10].mean(dim=1).argmax()) == expected_band
    assert frontend.frame_lengths(torch.tensor([0, 159, 160, 8000])).tolist() == [1, 1, 2, 51]
    mfcc = SpectralFrontend(16000, 400, 160, 40, "mfcc", 13, 0.0, 8000.0)(wave)
    assert mfcc.shape == (1, 13, 51)
    assert not any(k in frontend.state_dict() for k in ("window", "filters", "dct"))


# ---- preprocess --------------------------------------------------------------------------------------


def test_preprocess_resamples_mixes_scales_and_pads():
    enc = MelCNNEncoder(sample_rate=16000, **SMALL)
    stereo = np.stack([np.full(800, 0.5), np.full(800, -0.1)]).astype(np.float32)  # [channels, samples]
    batch = enc.preprocess([
        np.zeros(1600, dtype=np.float32),
        {"array": np.zeros(4410), "sampling_rate": 44100},      # 0.1 s at 44.1 kHz -> 1600 samples
        np.full(320, 16384, dtype=np.int16),                     # int16 -> 0.5
        stereo,
        torch.zeros(100),
        stereo.T,                                                # [samples, channels]
    ])
    wave, lengths = batch["waveform"], batch["lengths"]
    assert lengths.tolist() == [1600, 1600, 320, 800, 100, 800]
    assert wave.shape == (6, 1600) and wave.dtype == torch.float32
    assert torch.allclose(wave[2, :320], torch.full((320,), 0.5))
    assert torch.allclose(wave[3, :800], torch.full((800,), 0.2))
    assert torch.allclose(wave[5, :800], wave[3, :800])
    assert bool((wave[2, 320:] == 0).all())


def test_preprocess_truncates_to_max_seconds():
    enc = MelCNNEncoder(sample_rate=8000, max_seconds=0.5, **SMALL)
    batch = enc.preprocess([np.zeros(10000), {"array": np.zeros(48000), "sampling_rate": 16000}])
    assert batch["lengths"].tolist() == [4000, 4000]


@pytest.mark.parametrize(
    ("example", "message"),
    [(np.zeros(0), "the waveform is empty"),
     (np.array([0.0, np.nan]), "NaN"),
     ({"samples": [0.0]}, "needs an 'array' key"),
     ({"array": [0.0], "sampling_rate": -5}, "'sampling_rate' must be a positive integer"),
     (np.zeros((20, 30, 40)), "expected a 1-D waveform or"),
     (np.array(["a", "b"]), "expected numbers")],
)
def test_preprocess_errors_name_the_example(example, message):
    with pytest.raises(DatasetError, match=f"encoder 'mel-cnn': example 1: .*{message}"):
        MelCNNEncoder(**SMALL).preprocess([np.zeros(10), example])


# ---- model -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("features", ["logmel", "mfcc"])
def test_padding_never_changes_an_example(features):
    torch.manual_seed(0)
    enc = MelCNNEncoder(features=features, n_mfcc=8, **SMALL).eval()
    clips = [np.random.randn(n).astype(np.float32) for n in (16000, 3000, 7999)]
    batch = enc(enc.preprocess(clips))
    for i, clip in enumerate(clips):
        alone = enc(enc.preprocess([clip]))
        n = alone.tokens.shape[1]
        assert int(batch.mask[i].sum()) == n
        assert torch.allclose(alone.tokens[0], batch.tokens[i, :n], atol=1e-5)
        assert torch.allclose(alone.pooled[0], batch.pooled[i], atol=1e-5)


def test_tokens_follow_time_and_a_plain_tensor_is_accepted():
    enc = MelCNNEncoder(**SMALL)
    out = enc(torch.randn(2, 16000))
    frames = 1 + 16000 // 160  # 101 -> 51 -> 26 after two stride-2 blocks
    assert out.tokens.shape == (2, math.ceil(math.ceil(frames / 2) / 2), 6)
    assert bool(out.mask.all()) and out.pooled.shape == (2, 6)
    out.pooled.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_forward_rejects_bad_shapes():
    with pytest.raises(DatasetError, match=r"expected waveforms \[batch, samples\]"):
        MelCNNEncoder(**SMALL)(torch.zeros(3))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"features": "stft"}, "'features' must be one of 'logmel', 'mfcc', got 'stft'"),
     ({"features": "mfcc", "n_mfcc": 20, "n_mels": 16}, r"'n_mfcc' \(20\) cannot exceed 'n_mels' \(16\)"),
     ({"f_max": 9000}, r"need 0 <= f_min < f_max <= sample_rate / 2 \(8000\)"),
     ({"max_seconds": 0}, "'max_seconds' must be a positive number or null"),
     ({"hop_length": 0}, "'hop_length' must be a positive integer")],
)
def test_rejects_bad_params(params, message):
    with pytest.raises(BuildError, match="encoder 'mel-cnn': " + message):
        MelCNNEncoder(**params)
