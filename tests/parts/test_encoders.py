"""Builtin encoders: preprocessing of raw inputs, shapes, masks, padding invariance, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mmzoo.errors import BuildError, DatasetError, MmzooError
from mmzoo.parts.encoders.byte_gru import BOS_ID, BYTE_OFFSET, PAD_ID, ByteGRUEncoder
from mmzoo.parts.encoders.cnn import CNNEncoder
from mmzoo.parts.encoders.mlp import MLPEncoder

# ---- mlp ---------------------------------------------------------------------------------------------


def test_mlp_preprocess_stacks_lists_arrays_and_tensors():
    enc = MLPEncoder(in_dim=3, hidden_dims=[8, 8], output_dim=5)
    batch = enc.preprocess([[1, 2, 3], np.array([4.0, 5, 6]), torch.tensor([7, 8, 9])])
    assert batch.dtype == torch.float32
    assert batch.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    out = enc(batch)
    assert out.shape == (3, 5)
    out.pow(2).sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.parametrize(
    ("example", "message"),
    [([1, 2], r"example 1: expected 3 numbers \(in_dim\), got 2"),
     (["a", "b", "c"], "example 1: expected 3 numbers, got list"),
     ([1, float("nan"), 3], "example 1: contains NaN")],
)
def test_mlp_preprocess_rejects_bad_rows(example, message):
    enc = MLPEncoder(in_dim=3)
    with pytest.raises(DatasetError, match=message):
        enc.preprocess([[0, 0, 0], example])


def test_mlp_forward_rejects_wrong_width():
    with pytest.raises(DatasetError, match=r"expected input of shape \[batch, 3\], got \[2, 4\]"):
        MLPEncoder(in_dim=3)(torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"in_dim": 0}, "'in_dim' must be a positive integer, got 0"),
     ({"in_dim": 3, "hidden_dims": "64"}, "'hidden_dims' must be a list of positive integers"),
     ({"in_dim": 3, "hidden_dims": [8, -1]}, r"'hidden_dims\[1\]' must be a positive integer"),
     ({"in_dim": 3, "dropout": 1.5}, r"'dropout' must be a number in \[0, 1\)"),
     ({"in_dim": True}, "'in_dim' must be a positive integer, got True")],
)
def test_mlp_rejects_bad_params(params, message):
    with pytest.raises(BuildError, match="encoder 'mlp': " + message):
        MLPEncoder(**params)


# ---- cnn ---------------------------------------------------------------------------------------------


def test_cnn_preprocess_accepts_every_image_form_and_normalises():
    enc = CNNEncoder(channels=[4], output_dim=8, image_size=8)
    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    batch = enc.preprocess([
        white,                                              # HWC uint8
        np.zeros((8, 8, 3), dtype=np.float32),              # HWC float in [0, 1]
        Image.fromarray(white[..., 0], mode="L"),           # grey PIL -> RGB
        Image.new("RGBA", (8, 8), (255, 0, 0, 10)),         # alpha dropped
        torch.ones(3, 8, 8),                                # CHW tensor
        np.full((8, 8), 0.5),                               # HW -> repeated to 3 channels
        np.full((3, 8, 8), 255, dtype=np.uint8),            # CHW numpy
    ])
    assert batch.shape == (7, 3, 8, 8) and batch.dtype == torch.float32
    # mean = std = 0.5: white -> 1, black -> -1, mid-grey -> 0.
    assert torch.allclose(batch[0], torch.ones(3, 8, 8))
    assert torch.allclose(batch[1], -torch.ones(3, 8, 8))
    assert torch.allclose(batch[2], torch.ones(3, 8, 8))
    assert torch.allclose(batch[3][0], torch.ones(8, 8))
    assert torch.allclose(batch[3][1:], -torch.ones(2, 8, 8))
    assert torch.allclose(batch[4], torch.ones(3, 8, 8))
    assert torch.allclose(batch[5], torch.zeros(3, 8, 8))
    assert torch.allclose(batch[6], torch.ones(3, 8, 8))


def test_cnn_converts_colour_to_grey_and_resizes_any_size():
    enc = CNNEncoder(in_channels=1, channels=[4], output_dim=8, image_size=[6, 10], mean=0.0, std=1.0)
    red = np.zeros((31, 17, 3), dtype=np.uint8)
    red[..., 0] = 255
    batch = enc.preprocess([red, np.ones((2, 3), dtype=np.float32)])
    assert batch.shape == (2, 1, 6, 10)
    assert torch.allclose(batch[0], torch.full((1, 6, 10), 0.299), atol=1e-5)
    assert torch.allclose(batch[1], torch.ones(1, 6, 10), atol=1e-5)


def test_cnn_tokens_are_the_spatial_grid():
    enc = CNNEncoder(channels=[4, 8], output_dim=6, image_size=16)
    out = enc(enc.preprocess([np.zeros((16, 16, 3), np.uint8)] * 2))
    assert out.pooled.shape == (2, 6)
    assert out.tokens.shape == (2, 16, 6)  # 16 / 2 / 2 = 4 -> 4 x 4 cells
    assert out.mask.dtype == torch.bool and bool(out.mask.all())


def test_cnn_works_with_many_channels_and_no_resize():
    enc = CNNEncoder(in_channels=5, channels=[4], output_dim=3, image_size=None, mean=[0] * 5, std=[1] * 5)
    batch = enc.preprocess([np.random.rand(9, 7, 5).astype(np.float32) for _ in range(2)])
    assert batch.shape == (2, 5, 9, 7)
    assert enc(batch).tokens.shape == (2, 5 * 4, 3)


@pytest.mark.parametrize(
    ("examples", "message"),
    [([{"pixels": 1}], "example 0: expected an image file path, PIL image, numpy array or tensor, got dict"),
     (["no-such-image.png"], r"example 0: image file no-such-image.png does not exist"),
     ([np.zeros((4, 4, 5, 2))], r"example 0: expected a 2-D or 3-D image, got shape \[4, 4, 5, 2\]"),
     ([np.zeros((9, 9, 7))], r"example 0: cannot tell the channel axis of shape \[9, 9, 7\]"),
     ([np.zeros((0, 4, 3))], "example 0: image is empty"),
     ([], "empty list")],
)
def test_cnn_preprocess_errors(examples, message):
    with pytest.raises(DatasetError, match=message):
        CNNEncoder(image_size=8).preprocess(examples)


def test_cnn_without_image_size_needs_equal_sizes():
    with pytest.raises(DatasetError, match="different sizes .* set image_size"):
        CNNEncoder(image_size=None).preprocess([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))])


def test_cnn_cannot_make_five_channels_from_rgb():
    with pytest.raises(DatasetError, match="has 3 channels and cannot be converted to in_channels=5"):
        CNNEncoder(in_channels=5, mean=0, std=1, image_size=4).preprocess([torch.zeros(3, 4, 4)])


def test_cnn_forward_checks_channels():
    with pytest.raises(DatasetError, match=r"expected images of shape \[batch, 3, height, width\]"):
        CNNEncoder()(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"image_size": [1, 2, 3]}, "'image_size' must be an int or"),
     ({"mean": [0.5, 0.5]}, "'mean' must be a number or 3 numbers"),
     ({"std": 0}, "'std' must be positive"),
     ({"channels": []}, "'channels' must list at least one"),
     ({"in_channels": 0}, "'in_channels' must be a positive integer")],
)
def test_cnn_rejects_bad_params(params, message):
    with pytest.raises(BuildError, match="encoder 'cnn': " + message):
        CNNEncoder(**params)


# ---- byte-gru ----------------------------------------------------------------------------------------


def test_byte_gru_ids_are_bos_then_utf8_bytes_then_padding():
    enc = ByteGRUEncoder(max_length=6)
    ids = enc.preprocess(["hé", "", "abcdefgh", b"\x00"])
    h, e1, e2 = "hé".encode()
    assert ids.dtype == torch.long and ids.shape == (4, 6)
    assert ids[0].tolist() == [BOS_ID, h + BYTE_OFFSET, e1 + BYTE_OFFSET, e2 + BYTE_OFFSET, PAD_ID, PAD_ID]
    assert ids[1].tolist() == [BOS_ID] + [PAD_ID] * 5  # an empty text is still one real token
    assert ids[2].tolist() == [BOS_ID] + [b + BYTE_OFFSET for b in b"abcde"]  # truncated to max_length
    assert ids[3].tolist()[:2] == [BOS_ID, BYTE_OFFSET]  # a zero byte is not padding


def test_byte_gru_padding_does_not_change_any_example():
    torch.manual_seed(0)
    enc = ByteGRUEncoder(embed_dim=8, hidden_dim=8, num_layers=2, output_dim=6).eval()
    texts = ["short", "a considerably longer sentence", ""]
    batch = enc(enc.preprocess(texts))
    assert batch.tokens.shape == (3, 31, 6) and batch.mask.sum(1).tolist() == [6, 31, 1]
    for i, text in enumerate(texts):
        alone = enc(enc.preprocess([text]))
        n = len(text.encode()) + 1
        assert torch.allclose(alone.pooled[0], batch.pooled[i], atol=1e-5)
        assert torch.allclose(alone.tokens[0, :n], batch.tokens[i, :n], atol=1e-5)


def test_byte_gru_errors():
    enc = ByteGRUEncoder()
    with pytest.raises(DatasetError, match="example 1: expected a string, got int"):
        enc.preprocess(["ok", 3])
    with pytest.raises(DatasetError, match="all padding"):
        enc(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(DatasetError, match="expected byte ids LongTensor"):
        enc(torch.zeros(1, 4))
    with pytest.raises(BuildError, match="encoder 'byte-gru': 'max_length' must be a positive integer"):
        ByteGRUEncoder(max_length=0)


def test_every_encoder_error_is_an_mmzoo_error():
    assert issubclass(DatasetError, MmzooError) and issubclass(BuildError, MmzooError)
