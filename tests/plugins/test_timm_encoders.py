"""mmzoo-timm: the ``timm/<architecture>`` encoder family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import mmzoo
from mmzoo.errors import BuildError, DatasetError, MmzooError, UnknownNameError, WeightsError
from mmzoo.testing import check_encoder
from tests.plugins.support import photo

timm = pytest.importorskip("timm")
from mmzoo_timm.encoder import build_timm_encoder  # noqa: E402


def test_resnet_passes_the_conformance_kit():
    # timm zero-initialises each residual block's last norm, which would zero earlier gradients at init.
    encoder = check_encoder("timm/resnet18", {"img_size": 64, "zero_init_last": False}, modality="image")
    assert encoder.output_dim == 512 and encoder.provides_tokens
    out = encoder(encoder.preprocess([photo("chelsea")]))
    assert out.tokens.shape == (1, 4, 512)  # a 2x2 feature map at 64 px, flattened
    assert out.mask.dtype == torch.bool and bool(out.mask.all())


def test_image_files_are_read_by_path_and_described_by_raw_input(tmp_path):
    encoder = build_timm_encoder("resnet18", img_size=48).eval()
    Image.fromarray(photo("astronaut")).save(tmp_path / "astronaut.png")
    from_file = encoder.preprocess([tmp_path / "astronaut.png", str(tmp_path / "astronaut.png")])
    torch.testing.assert_close(from_file[0], encoder.preprocess([photo("astronaut")])[0])
    torch.testing.assert_close(from_file[1], from_file[0])
    raw = encoder.raw_input
    assert (raw.kind, raw.size, raw.channels) == ("image", (48, 48), 3) and raw.accepts_paths
    assert "normalised with mean (0.485, 0.456, 0.406)" in raw.description
    with pytest.raises(DatasetError, match=r"encoder 'timm/resnet18': example 0: image file .*gone.jpg does not exist"):
        encoder.preprocess([tmp_path / "gone.jpg"])


def test_vit_tokens_and_any_timm_kwarg_pass_the_conformance_kit():
    # depth and img_size go straight to timm: a 2-block ViT on 32 px images, 4 patches + 1 class token.
    encoder = check_encoder("timm/vit_tiny_patch16_224", {"img_size": 32, "depth": 2}, modality="image")
    assert len(encoder.model.blocks) == 2
    out = encoder(encoder.preprocess([photo("coffee"), photo("camera")]))
    assert out.pooled.shape == (2, 192) and out.tokens.shape == (2, 5, 192)
    torch.testing.assert_close(out.pooled, encoder.model.forward_head(out.tokens))


def test_channels_last_feature_maps_become_tokens_in_row_major_order():
    encoder = build_timm_encoder("swin_tiny_patch4_window7_224", depths=[1, 1, 1, 1], embed_dim=24,
                                 num_heads=[1, 1, 1, 1]).eval()
    images = encoder.preprocess([photo("rocket")])
    with torch.no_grad():
        out = encoder(images)
        nhwc = encoder.model.forward_features(images)
    assert nhwc.shape == (1, 7, 7, 192)
    assert out.tokens.shape == (1, 49, 192)
    torch.testing.assert_close(out.tokens[0, 7 * 2 + 3], nhwc[0, 2, 3])


def test_architecture_whose_head_widens_gives_pooled_features_only():
    encoder = build_timm_encoder("mobilenetv3_small_100", img_size=64)
    assert encoder.output_dim == 1024 and not encoder.provides_tokens
    assert encoder(encoder.preprocess([photo("coffee")])).tokens is None
    spec = {"encoders": {"image": {"type": "timm/mobilenetv3_small_100", "img_size": 64},
                         "text": {"type": "byte-gru"}},
            "fusion": {"type": "cross-attention", "dim": 32},
            "head": {"type": "classification", "num_classes": 2}}
    with pytest.raises(BuildError, match="only pooled features"):
        mmzoo.create_model(spec)


def test_unknown_architecture_suggests_close_names():
    spec = {"encoders": {"image": {"type": "timm/resnt18"}}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 2}}
    with pytest.raises(UnknownNameError) as err:
        mmzoo.create_model(spec)
    assert "timm/resnt18" in str(err.value) and "Did you mean 'timm/resnet18'" in str(err.value)


def test_bad_parameters_are_build_errors():
    with pytest.raises(BuildError, match="img_size"):
        build_timm_encoder("resnet18", img_size=[0, 3])
    with pytest.raises(BuildError, match="timm rejected"):
        build_timm_encoder("resnet18", no_such_option=1)


def test_preprocess_uses_timms_own_data_config_and_transform():
    from timm.data import create_transform, resolve_data_config

    encoder = build_timm_encoder("resnet18").eval()
    config = resolve_data_config({}, model=encoder.model)
    assert encoder.data_config == config  # bicubic, crop_pct 0.95, ImageNet mean/std for resnet18
    image = photo("astronaut")
    expected = create_transform(**config)(Image.fromarray(image))
    torch.testing.assert_close(encoder.preprocess([image])[0], expected)


def test_image_kinds_are_converted_to_the_channels_the_model_takes():
    encoder = build_timm_encoder("resnet18", img_size=48).eval()
    gray = photo("camera")  # uint8 HxW
    as_rgb = np.repeat(gray[..., None], 3, axis=2)
    batch = encoder.preprocess([gray, gray[..., None], as_rgb, Image.fromarray(gray),
                                np.concatenate([as_rgb, np.full_like(gray[..., None], 255)], axis=2),
                                as_rgb.astype(np.float32) / 255.0, np.moveaxis(as_rgb, 2, 0)])
    assert batch.shape == (7, 3, 48, 48)
    for i in range(1, 7):
        torch.testing.assert_close(batch[i], batch[0], atol=1e-2, rtol=0)

    one_channel = build_timm_encoder("resnet18", img_size=48, in_chans=1).eval()
    x = one_channel.preprocess([photo("chelsea"), gray])
    assert x.shape == (2, 1, 48, 48)
    assert one_channel(x).pooled.shape == (2, 512)


@pytest.mark.parametrize(
    "example, message",
    [("no-such-photo.jpg", "image file no-such-photo.jpg does not exist"),
     (3.5, "expected an image file path, a PIL image or a numpy array, got float"),
     (np.full((8, 8, 3), 2.0, dtype=np.float32), r"\[0, 1\]"),
     (np.zeros((2, 8, 8, 3), dtype=np.uint8), "expected an image array"),
     (np.zeros((8, 8), dtype=np.complex64), "unsupported image dtype")],
)
def test_bad_images_name_the_example_and_what_is_expected(example, message):
    encoder = build_timm_encoder("resnet18", img_size=32)
    with pytest.raises(DatasetError, match=message) as err:
        encoder.preprocess([photo("coffee"), example])
    assert "example 1" in str(err.value)


def test_same_transform_in_training_unless_augmentation_is_asked_for():
    image = photo("chelsea")
    plain = build_timm_encoder("resnet18", img_size=64)
    plain.train()
    train_view = plain.preprocess([image])
    plain.eval()
    torch.testing.assert_close(train_view, plain.preprocess([image]))

    augmented = build_timm_encoder("resnet18", img_size=64, augment={"hflip": 1.0, "scale": (0.2, 0.3)})
    augmented.eval()
    torch.testing.assert_close(augmented.preprocess([image]), plain.preprocess([image]))
    augmented.train()
    torch.manual_seed(0)
    views = [augmented.preprocess([image]) for _ in range(2)]
    assert views[0].shape == (1, 3, 64, 64)
    assert not torch.allclose(views[0], views[1])
    assert not torch.allclose(views[0], train_view)


def test_freeze_keeps_weights_and_batch_statistics_fixed():
    encoder = build_timm_encoder("resnet18", img_size=32, freeze=True)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training  # batch norm keeps its running statistics
    out = encoder(encoder.preprocess([photo("coffee"), photo("rocket")]))
    assert out.pooled.grad_fn is None


def test_drop_path_rate_reaches_the_model():
    encoder = build_timm_encoder("vit_tiny_patch16_224", img_size=32, depth=2, drop_path_rate=0.2)
    assert encoder.model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)


def _resnet18_weights(path):
    from safetensors.torch import save_file

    torch.manual_seed(7)
    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), str(path))
    reference.reset_classifier(0)
    return reference.eval()


def test_pretrained_file_loads_local_weights_without_the_classifier(tmp_path):
    reference = _resnet18_weights(tmp_path / "resnet18.safetensors")
    encoder = build_timm_encoder("resnet18", pretrained_file=str(tmp_path / "resnet18.safetensors")).eval()
    x = encoder.preprocess([photo("chelsea")])
    with torch.no_grad():
        torch.testing.assert_close(encoder(x).pooled, reference(x))
    with pytest.raises(WeightsError, match="does not exist"):
        build_timm_encoder("resnet18", pretrained_file=str(tmp_path / "missing.safetensors"))
    # pretrained: false (what the builder passes before loading a saved model's weights) skips the file
    missing = str(tmp_path / "missing.safetensors")
    random = build_timm_encoder("resnet18", pretrained=False, pretrained_file=missing)
    assert not torch.equal(random.model.conv1.weight, reference.conv1.weight)


def _fake_hub_cache(cache, repo_id: str, weights_file) -> None:
    """Lay ``weights_file`` out in a Hugging Face cache as ``repo_id``'s model.safetensors."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(weights_file.read_bytes())


@pytest.mark.timeout(120)
def test_pretrained_weights_in_the_cache_load_with_the_hub_unreachable(tmp_path, empty_hub_cache, monkeypatch,
                                                                       closed_port_url):
    reference = _resnet18_weights(tmp_path / "w.safetensors")
    _fake_hub_cache(empty_hub_cache, "timm/resnet18.a1_in1k", tmp_path / "w.safetensors")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url)
    encoder = build_timm_encoder("resnet18", pretrained=True).eval()
    x = encoder.preprocess([photo("coffee")])
    with torch.no_grad():
        torch.testing.assert_close(encoder(x).pooled, reference(x))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "closed port"])
def test_pretrained_weights_missing_offline_fail_at_once_with_the_fix(offline, empty_hub_cache, monkeypatch,
                                                                      closed_port_url):
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", closed_port_url)
    spec = {"encoders": {"image": {"type": "timm/resnet18", "pretrained": True}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    with pytest.raises(WeightsError) as err:
        mmzoo.create_model(spec)
    message = str(err.value)
    assert "timm/resnet18.a1_in1k" in message and "not in the local cache" in message
    assert ("HF_HUB_OFFLINE" in message) if offline == "HF_HUB_OFFLINE" else ("cannot be reached" in message)
    assert "pretrained_file" in message and "efficientnet-lite0" in message
    assert isinstance(err.value, MmzooError)
