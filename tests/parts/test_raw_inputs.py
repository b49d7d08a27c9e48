"""Raw inputs by path and each builtin encoder's raw_input; the conformance kit's raw_input check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.data.audio import write_wav
from mmzoo.errors import DatasetError
from mmzoo.parts.encoders.byte_gru import ByteGRUEncoder
from mmzoo.parts.encoders.cnn import CNNEncoder
from mmzoo.parts.encoders.mel_cnn import MelCNNEncoder
from mmzoo.parts.encoders.mlp import MLPEncoder
from mmzoo.testing import check_encoder


@pytest.fixture
def photo_png(tmp_path) -> Path:
    import skimage.data
    from PIL import Image

    path = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()).save(path)
    return path


def test_cnn_reads_image_files_as_str_or_path(photo_png):
    from PIL import Image

    encoder = CNNEncoder(in_channels=1, image_size=24)
    decoded = encoder.preprocess([Image.open(photo_png)])
    for form in (photo_png, str(photo_png)):
        assert torch.equal(encoder.preprocess([form]), decoded)
    with pytest.raises(DatasetError, match=r"encoder 'cnn': example 1: image file .*nothere.png does not exist"):
        encoder.preprocess([photo_png, "nothere.png"])


def test_mel_cnn_reads_audio_files_at_any_rate(tmp_path):
    rate = 22050
    wave = (0.3 * np.sin(2 * np.pi * 300 * np.arange(rate // 2) / rate)).astype(np.float32)
    write_wav(tmp_path / "a.wav", wave, rate)
    encoder = MelCNNEncoder(sample_rate=16000, n_mels=16, channels=[4], output_dim=8)
    from_file = encoder.preprocess([tmp_path / "a.wav"])
    from_value = encoder.preprocess([mmzoo.load_audio(tmp_path / "a.wav")])
    assert torch.equal(from_file["waveform"], from_value["waveform"])
    assert from_file["waveform"].shape == (1, 8000)  # resampled to 16 kHz
    with pytest.raises(DatasetError, match=r"encoder 'mel-cnn': example 0: .*missing.wav"):
        encoder.preprocess([str(tmp_path / "missing.wav")])


def test_a_text_encoder_keeps_strings_as_text(photo_png):
    encoder = ByteGRUEncoder(output_dim=8, hidden_dim=8, embed_dim=4)
    ids = encoder.preprocess([str(photo_png)])
    assert ids.shape[1] == len(str(photo_png).encode()) + 1  # the path's own bytes, not the file


def test_each_builtin_encoder_describes_its_raw_input():
    cnn = CNNEncoder(in_channels=3, image_size=[32, 48], mean=[0.5, 0.4, 0.3])
    assert cnn.raw_input == mmzoo.RawInput(
        "image", size=(32, 48), channels=3, accepts=("path", "pil", "array", "tensor"),
        description="scaled to [0, 1], normalised with mean (0.5, 0.4, 0.3) and std (0.5, 0.5, 0.5)")
    mel = MelCNNEncoder(sample_rate=8000, max_seconds=2.0, features="mfcc", n_mels=16, n_mfcc=8)
    assert (mel.raw_input.kind, mel.raw_input.sample_rate, mel.raw_input.max_seconds) == ("audio", 8000, 2.0)
    assert mel.raw_input.accepts_paths and "mfcc" in mel.raw_input.description
    assert ByteGRUEncoder(max_length=64).raw_input.to_dict() == {
        "kind": "text", "max_length": 64, "accepts": ["text", "bytes"], "description": "UTF-8 bytes, no tokenizer"}
    assert MLPEncoder(in_dim=5).raw_input.dim == 5 and not MLPEncoder(in_dim=5).raw_input.accepts_paths
    assert cnn.raw_input.summary().startswith("image 32x48, 3 channels; accepts path, pil, array, tensor")


def test_raw_input_refuses_nonsense():
    with pytest.raises(ValueError, match="RawInput.accepts: unknown form"):
        mmzoo.RawInput("image", accepts=("url",))
    with pytest.raises(ValueError, match=r"RawInput.size must be \(height, width\)"):
        mmzoo.RawInput("image", size=(0, 4))


class _LyingSize(CNNEncoder):
    @property
    def raw_input(self):
        return mmzoo.RawInput("image", size=(99, 99), channels=3, accepts=("pil", "array"))


class _PathsIgnored(CNNEncoder):
    """Says it takes paths but decodes them differently from the file's pixels (always grey)."""

    @property
    def raw_input(self):
        return mmzoo.RawInput("image", size=self.image_size, channels=self.in_channels, accepts=("path", "array"))

    def preprocess(self, examples):
        return super().preprocess([np.zeros((8, 8), np.uint8) if isinstance(e, (str, Path)) else e
                                   for e in examples])


class _NotARawInput(CNNEncoder):
    raw_input = {"kind": "image"}


@pytest.mark.parametrize(("cls", "message"), [
    (_LyingSize, r"raw_input.size is \(99, 99\) but preprocess gives images of \(16, 16\)"),
    (_PathsIgnored, r"preprocess\(\[str path\]\) vs the decoded file: outputs differ"),
    (_NotARawInput, "raw_input must be a mmzoo.RawInput"),
])
def test_the_conformance_kit_checks_raw_input(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_encoder(cls, {"channels": [4], "output_dim": 8, "image_size": 16})
