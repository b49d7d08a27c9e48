"""mmzoo-timm: the batched eval preprocessing equals timm's transform applied image by image, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.plugins.support import photo

timm = pytest.importorskip("timm")
from mmzoo_timm.batched import BatchedEvalTransform  # noqa: E402
from mmzoo_timm.encoder import build_timm_encoder  # noqa: E402
from mmzoo_timm.images import MODES, to_pil  # noqa: E402
from timm.data import create_transform  # noqa: E402
from torchvision import transforms as T  # noqa: E402


def per_image(encoder, examples):
    """What preprocess computed before the fast path: the eval transform on each converted image."""
    return torch.stack([encoder.eval_transform(to_pil(ex, encoder.in_chans, "test")) for ex in examples])


def mixed_examples(seed: int):
    rng = np.random.default_rng(seed)
    return {
        "grey uint8 (MNIST-like)": [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(5)],
        "RGB uint8, other sizes": [rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8) for i in range(5)],
        "grey floats": [rng.random((30, 21)).astype(np.float32) for _ in range(3)],
        "RGBA": [rng.integers(0, 256, (33, 31, 4), dtype=np.uint8) for _ in range(3)],
        "channels first": [rng.integers(0, 256, (3, 28, 28), dtype=np.uint8) for _ in range(3)],
        "PIL grey and RGB mixed": [Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)),
                                   Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))],
        "real photos": [photo("chelsea"), photo("camera"), photo("coffee")],
    }


@pytest.mark.parametrize("in_chans", [3, 1])
@pytest.mark.parametrize("seed", [0, 1])
def test_preprocess_is_bit_identical_to_the_per_image_transform(in_chans, seed):
    encoder = build_timm_encoder("resnet18", img_size=48, in_chans=in_chans).eval()
    assert encoder.batched_eval is not None
    for label, examples in mixed_examples(seed).items():
        expected = per_image(encoder, examples)
        got = encoder.preprocess(examples)
        assert got.shape == expected.shape == (len(examples), in_chans, 48, 48), label
        assert got.is_contiguous(), label
        assert torch.equal(got, expected), label


def test_grey_images_resized_grey_match_their_rgb_conversion_for_every_filter():
    rng = np.random.default_rng(3)
    for interpolation in ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming"):
        transform = create_transform(input_size=(3, 37, 37), interpolation=interpolation, crop_pct=0.8,
                                     mean=(0.2, 0.4, 0.6), std=(0.3, 0.2, 0.1))
        batched = BatchedEvalTransform.from_transform(transform, 3)
        assert batched is not None, interpolation
        images = [Image.fromarray(rng.integers(0, 256, (int(h), int(w)), dtype=np.uint8))
                  for h, w in rng.integers(5, 90, size=(6, 2))]
        expected = torch.stack([transform(image.convert(MODES[3])) for image in images])
        assert torch.equal(batched(images), expected), interpolation


def test_training_augmentation_keeps_the_per_image_path():
    encoder = build_timm_encoder("resnet18", img_size=32, augment=True)
    assert encoder.train_transform is not encoder.eval_transform
    assert BatchedEvalTransform.from_transform(encoder.train_transform, 3) is None
    torch.manual_seed(0)
    batch = encoder.train().preprocess([photo("chelsea"), np.zeros((28, 28), np.uint8)])
    assert batch.shape == (2, 3, 32, 32)
    eval_batch = encoder.eval().preprocess([photo("chelsea")])
    torch.testing.assert_close(eval_batch, per_image(encoder, [photo("chelsea")]), rtol=0, atol=0)


def test_images_of_different_final_sizes_fall_back_and_fail_as_before():
    transform = T.Compose([T.Resize(16), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])  # no crop
    batched = BatchedEvalTransform.from_transform(transform, 3)
    assert batched is not None
    wide, tall = Image.new("RGB", (40, 20)), Image.new("RGB", (20, 40))
    assert batched([wide, tall]) is None
    assert batched([wide, wide]).shape == (2, 3, 16, 32)


def test_only_plain_resize_crop_tensor_normalize_pipelines_take_the_fast_path():
    normalize = T.Normalize((0.5,) * 3, (0.5,) * 3)
    assert BatchedEvalTransform.from_transform(T.Compose([T.CenterCrop(8), T.ToTensor(), normalize]), 3)
    assert BatchedEvalTransform.from_transform(T.Compose([T.Grayscale(3), T.ToTensor(), normalize]), 3) is None
    assert BatchedEvalTransform.from_transform(T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5, inplace=True)]),
                                               3) is None
    assert BatchedEvalTransform.from_transform(T.Compose([T.ToTensor(), normalize]), 1) is None  # 3 means, 1 channel
    assert BatchedEvalTransform.from_transform(normalize, 3) is None
