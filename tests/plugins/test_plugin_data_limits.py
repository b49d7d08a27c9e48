"""The first-party plugins' preprocessing is bounded by mmzoo's data limits like the builtin parts'."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mmzoo.errors import DatasetError
from tests.hostile_data import GIB, memory_cap, write_png
from tests.plugins.support import TINY_AUDIO


def test_timm_checks_image_size_before_decoding_a_lazily_opened_file(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    from mmzoo_timm.encoder import build_timm_encoder
    from PIL import Image

    encoder = build_timm_encoder("resnet18", pretrained=False, img_size=32)
    write_png(tmp_path / "big.png", 12_000, 12_000)  # 144 MP: Pillow only warns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        lazy = Image.open(tmp_path / "big.png")
    with memory_cap(GIB), pytest.raises(DatasetError, match="timm/resnet18'?: example 0: image of 12000x12000"):
        encoder.preprocess([lazy])
    monkeypatch.setenv("MMZOO_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DatasetError, match="example 1: image of 40x30 = 1200 pixels is over the limit of 1000"):
        encoder.preprocess([np.zeros((20, 20, 3), np.uint8), np.zeros((30, 40, 3), np.uint8)])


def test_hf_audio_refuses_a_waveform_at_1_hz_instead_of_resampling_it(monkeypatch):
    pytest.importorskip("transformers")
    from mmzoo_transformers.factory import build_hf_encoder

    encoder = build_hf_encoder("tiny-wav2vec2", config=TINY_AUDIO["wav2vec2"])
    bomb = {"array": np.zeros(200_000, np.float32), "sampling_rate": 1}
    with memory_cap(), pytest.raises(DatasetError) as exc:
        encoder.preprocess([bomb])
    assert "example 0: audio clip of 200000 samples at 1 Hz lasts 200000 s, over the limit" in str(exc.value)
    monkeypatch.setenv("MMZOO_MAX_SAMPLE_RATE", "20000")
    with pytest.raises(DatasetError, match="sampling rate 44100 Hz is over the limit of 20000 Hz"):
        encoder.preprocess([{"array": np.zeros(441, np.float32), "sampling_rate": 44100}])
    clipped = build_hf_encoder("tiny-wav2vec2", config=TINY_AUDIO["wav2vec2"], max_seconds=2.0)
    assert clipped.preprocess([bomb])["input_values"].shape == (1, 32000)  # cut to 2 s before resampling
