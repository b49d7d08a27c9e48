"""mmzoo-transformers: ``hf/`` audio encoders on raw waveforms (tiny configs, real synthesized speech).

transformers' speech architectures have no pretrained weights available offline, so these run with
random weights; what is checked is the real pipeline: feature extraction, resampling, masks over
padded frames, pooling, and the part contract.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.errors import DatasetError, SpecError
from mmzoo.testing import check_encoder
from tests.plugins.support import TINY_AUDIO

pytest.importorskip("transformers")
from mmzoo_transformers.audio import to_mono  # noqa: E402
from mmzoo_transformers.factory import build_hf_encoder  # noqa: E402


@pytest.fixture(scope="module")
def speech():
    """Real synthesized speech: ("seven", "seventy seven thousand") as int16 at eSpeak's 22,050 Hz."""
    pytest.importorskip("espeakng_loader")
    from mmzoo.data.speech import get_synthesizer, trim_silence

    synth = get_synthesizer()
    short, long = (trim_silence(synth.speak(t)) for t in ("seven", "seventy seven thousand"))
    assert synth.sample_rate == 22050 and len(long) > 1.5 * len(short)
    return synth.sample_rate, short, long


@pytest.mark.parametrize("arch", sorted(TINY_AUDIO))
def test_audio_architectures_pass_the_conformance_kit(arch):
    encoder = check_encoder(f"hf/tiny-{arch}", {"config": TINY_AUDIO[arch]}, modality="audio")
    assert encoder.modality == "audio" and encoder.provides_tokens and encoder.output_dim == 32


@pytest.mark.parametrize("arch", ["wav2vec2", "whisper"])
def test_real_speech_resampled_and_masked_by_duration(arch, speech):
    rate, short, long = speech
    encoder = build_hf_encoder(f"tiny-{arch}", config=TINY_AUDIO[arch]).eval()
    inputs = encoder.preprocess([{"array": short, "sampling_rate": rate}, (long, rate)])
    with torch.no_grad():
        out = encoder(inputs)
    frames = out.mask.sum(dim=1).tolist()
    # both clips are resampled to 16 kHz; real frames follow the clip durations
    ratio = len(long) / len(short)
    assert frames[1] / frames[0] == pytest.approx(ratio, rel=0.1)
    assert out.pooled.shape == (2, 32) and torch.isfinite(out.pooled).all()
    alone = encoder(encoder.preprocess([{"array": short, "sampling_rate": rate}])).pooled
    torch.testing.assert_close(alone[0], out.pooled[0], atol=1e-4, rtol=1e-4)


def test_resampling_keeps_the_pitch_and_the_duration_with_mmzoos_one_resampler():
    rate = 44100
    t = np.arange(rate, dtype=np.float64) / rate
    tone = np.sin(2 * np.pi * 1000.0 * t)
    out = to_mono({"array": tone, "sampling_rate": rate}, 16000, "x")
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    np.testing.assert_array_equal(out, mmzoo.resample_audio(tone.astype(np.float32), rate, 16000))


def test_audio_files_are_read_by_path_and_described_by_raw_input(tmp_path):
    from mmzoo.data.audio import write_wav

    rate = 22050
    wave = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate // 2) / rate)
    write_wav(tmp_path / "a.wav", wave, rate)
    encoder = build_hf_encoder("tiny-wav2vec2", config=TINY_AUDIO["wav2vec2"], max_seconds=4.0).eval()
    from_file = encoder.preprocess([tmp_path / "a.wav"])
    from_value = encoder.preprocess([mmzoo.load_audio(tmp_path / "a.wav")])
    torch.testing.assert_close(from_file["input_values"], from_value["input_values"])
    raw = encoder.raw_input
    assert (raw.kind, raw.sample_rate, raw.max_seconds) == ("audio", 16000, 4.0) and raw.accepts_paths
    assert "Wav2Vec2FeatureExtractor" in raw.description


def test_waveform_forms_are_normalised_to_mono_float():
    wave = (np.sin(np.linspace(0, 100, 8000)) * 10000).astype(np.int16)
    mono = to_mono(wave, 16000, "x")
    assert mono.dtype == np.float32 and np.abs(mono).max() == pytest.approx(10000 / 32768, rel=1e-3)
    stereo = np.stack([wave, wave])  # channels x samples
    np.testing.assert_allclose(to_mono(stereo, 16000, "x"), mono)
    np.testing.assert_allclose(to_mono(stereo.T, 16000, "x"), mono)
    np.testing.assert_allclose(to_mono(torch.from_numpy(mono), 16000, "x"), mono)
    assert len(to_mono({"array": mono, "sampling_rate": 8000}, 16000, "x")) == 16000


@pytest.mark.parametrize(
    "example, message",
    [("speech.wav", r"cannot read audio file speech.wav: it does not exist"),
     (b"RIFF", "expected a waveform of floats"),
     ({"audio": [0.0]}, "needs 'array'"),
     (np.zeros((2, 3, 4), np.float32), "expected a 1-D waveform"),
     ({"array": np.zeros(10, np.float32), "sampling_rate": -1}, "sampling_rate must be a positive integer")],
)
def test_bad_waveforms_name_the_example(example, message):
    encoder = build_hf_encoder("tiny", config=TINY_AUDIO["wav2vec2"])
    with pytest.raises(DatasetError, match=message) as err:
        encoder.preprocess([np.zeros(1600, np.float32), example])
    assert "example 1" in str(err.value)


def _backbone_masks(encoder) -> list[bool]:
    """Whether each call of the encoder's backbone received an attention_mask."""
    calls: list[bool] = []
    encoder.backbone.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs.get("attention_mask") is not None), with_kwargs=True)
    return calls


def test_group_norm_wav2vec2_gets_no_attention_mask_but_still_masks_frames():
    config = {**TINY_AUDIO["wav2vec2"], "feat_extract_norm": "group"}
    encoder = build_hf_encoder("tiny", config=config).eval()
    calls = _backbone_masks(encoder)
    out = encoder(encoder.preprocess([np.zeros(3200, np.float32), np.ones(6400, np.float32) * 0.1]))
    assert calls == [False]  # trained without one, so the backbone must not get one
    # two convolutions: kernel 10 stride 5, then kernel 8 stride 4
    frames = [((n - 10) // 5 + 1 - 8) // 4 + 1 for n in (3200, 6400)]
    assert out.mask.sum(dim=1).tolist() == frames == [158, 318]
    layer_norm = build_hf_encoder("tiny", config=TINY_AUDIO["wav2vec2"]).eval()
    calls = _backbone_masks(layer_norm)
    layer_norm(layer_norm.preprocess([np.zeros(3200, np.float32), np.ones(6400, np.float32) * 0.1]))
    assert calls == [True]


def test_layerdrop_is_off_unless_asked_for():
    assert build_hf_encoder("tiny", config=TINY_AUDIO["wav2vec2"]).backbone.config.layerdrop == 0.0
    encoder = build_hf_encoder("tiny", config=TINY_AUDIO["hubert"], layerdrop=0.3)
    assert encoder.backbone.config.layerdrop == 0.3
    with pytest.raises(SpecError, match="layerdrop"):
        build_hf_encoder("tiny", config=TINY_AUDIO["hubert"], layerdrop=1.5)


def test_cls_pooling_uses_the_models_pooler_when_it_has_one():
    encoder = build_hf_encoder("tiny", config=TINY_AUDIO["ast"], pooling="cls").eval()
    out = encoder(encoder.preprocess([np.zeros(16000, np.float32)]))
    # AST pools the mean of its CLS and distillation tokens
    torch.testing.assert_close(out.pooled, (out.tokens[:, 0] + out.tokens[:, 1]) / 2)


def test_max_seconds_truncates_and_text_options_are_refused():
    encoder = build_hf_encoder("tiny", config=TINY_AUDIO["wav2vec2"], max_seconds=0.5)
    assert encoder.preprocess([np.zeros(32000, np.float32)])["input_values"].shape == (1, 8000)
    with pytest.raises(SpecError, match="for text encoders"):
        build_hf_encoder("tiny", config=TINY_AUDIO["wav2vec2"], max_length=10)


def test_audio_image_model_with_an_hf_audio_encoder(speech):
    rate, short, long = speech
    spec = {"encoders": {"audio": {"type": "hf/tiny-hubert", "config": TINY_AUDIO["hubert"]},
                         "image": {"type": "cnn", "image_size": 32, "output_dim": 32}},
            "fusion": {"type": "sum", "dim": 32},
            "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    image = np.zeros((28, 28), np.uint8)
    batch = model.preprocess([{"audio": {"array": short, "sampling_rate": rate}, "image": image, "target": 0},
                              {"audio": {"array": long, "sampling_rate": rate}, "image": image, "target": 1}])
    out = model(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
