"""Property tests: preprocessing and resampling hold their promises for arbitrary inputs."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmzoo.data.resample import resample
from mmzoo.parts.encoders.byte_gru import BOS_ID, BYTE_OFFSET, PAD_ID, ByteGRUEncoder
from mmzoo.parts.encoders.cnn import CNNEncoder

CNN = CNNEncoder(channels=[4], output_dim=4, image_size=8)
GRU = ByteGRUEncoder(embed_dim=4, hidden_dim=4, output_dim=4, max_length=16)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.sampled_from([None, 1, 2, 3, 4]),
    dtype=st.sampled_from(["uint8", "float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_cnn_preprocess_gives_normalised_fixed_size_images(height, width, channels, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    image = (
        rng.integers(0, 256, shape).astype(np.uint8) if dtype == "uint8" else rng.random(shape).astype(dtype)
    )
    batch = CNN.preprocess([image])
    assert batch.shape == (1, 3, 8, 8) and batch.dtype == torch.float32
    assert bool(torch.isfinite(batch).all())
    assert float(batch.min()) >= -1.0 - 1e-5 and float(batch.max()) <= 1.0 + 1e-5  # [0, 1] -> [-1, 1]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_byte_ids_round_trip_to_the_truncated_utf8_bytes(texts):
    ids = GRU.preprocess(texts)
    for row, text in zip(ids.tolist(), texts):
        real = [i for i in row if i != PAD_ID]
        assert real[0] == BOS_ID and row[: len(real)] == real  # padding only at the end
        assert bytes(i - BYTE_OFFSET for i in real[1:]) == text.encode("utf-8")[:15]


@settings(max_examples=30, deadline=None)
@given(orig=st.integers(4000, 48000), new=st.integers(4000, 48000), length=st.integers(1, 3000))
def test_resampling_keeps_duration_and_level(orig, new, length):
    out = resample(torch.ones(length), orig, new)
    assert out.shape == (math.ceil(length * new / orig),)
    assert bool(torch.isfinite(out).all())
    margin = (
        math.ceil(16 / (0.95 * min(1.0, new / orig))) * new / orig + 2
    )  # the filter's reach, in output samples
    interior = out[int(margin) : out.shape[0] - int(margin)]
    if interior.numel():
        assert float((interior - 1).abs().max()) < 0.02  # a constant stays constant away from the ends
