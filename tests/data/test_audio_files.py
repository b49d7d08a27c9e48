"""Decoding audio and image files: float WAVs, FLAC and OGG through soundfile, scipy where soundfile is
missing, the data limits, and errors that name the file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import mmzoo
from mmzoo.data.audio import read_audio
from mmzoo.errors import DatasetError

soundfile = pytest.importorskip("soundfile")


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_float_wav_is_read(tmp_path):
    # IEEE float WAVs (format 3) are what numpy/scipy users write; the stdlib wave module refused them
    from scipy.io import wavfile

    wavfile.write(tmp_path / "float.wav", 22050, tone(22050))
    samples, rate = read_audio(tmp_path / "float.wav")
    assert rate == 22050 and samples.dtype == np.float32
    np.testing.assert_allclose(samples, tone(22050), atol=1e-7)


@pytest.mark.parametrize(("suffix", "subtype", "atol"), [(".flac", "PCM_16", 1e-4), (".ogg", "VORBIS", 0.05),
                                                         (".wav", "PCM_24", 1e-6)])
def test_flac_ogg_and_24_bit_files_decode_to_the_same_tone(tmp_path, suffix, subtype, atol):
    path = tmp_path / f"tone{suffix}"
    stereo = np.stack([tone(16000), tone(16000)], axis=1)
    soundfile.write(path, stereo, 16000, subtype=subtype)
    value = mmzoo.load_audio(path)
    assert value["sampling_rate"] == 16000 and value["array"].shape == (8000,)  # mixed to mono
    np.testing.assert_allclose(value["array"][1000:-1000], tone(16000)[1000:-1000], atol=atol)


def test_load_audio_resamples_with_the_one_resampler(tmp_path):
    soundfile.write(tmp_path / "a.flac", tone(44100), 44100)
    value = mmzoo.load_audio(str(tmp_path / "a.flac"), 16000)
    direct = mmzoo.resample_audio(read_audio(tmp_path / "a.flac")[0], 44100, 16000)
    assert value["sampling_rate"] == 16000 and np.array_equal(value["array"], direct)


def test_limits_apply_to_every_format_before_decoding(tmp_path):
    soundfile.write(tmp_path / "long.flac", np.zeros(8000 * 3, np.float32), 8000)
    with pytest.raises(DatasetError, match=r"long.flac: audio clip of 24000 samples at 8000 Hz lasts 3 s, over the "
                                           r"limit of 2 s"):
        mmzoo.load_audio(tmp_path / "long.flac", limits={"audio_seconds": 2})


def test_files_that_are_not_audio_or_missing_are_named(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"notes.wav is not an audio file soundfile can read"):
        read_audio(tmp_path / "notes.wav")
    with pytest.raises(DatasetError, match=r"cannot read audio file .*gone.flac: it does not exist"):
        read_audio(tmp_path / "gone.flac")


def test_without_soundfile_wavs_are_read_by_scipy(tmp_path, monkeypatch):
    from scipy.io import wavfile

    wavfile.write(tmp_path / "float.wav", 8000, tone(8000))
    wavfile.write(tmp_path / "ints.wav", 8000, (tone(8000) * 32767).astype(np.int16))
    monkeypatch.setitem(sys.modules, "soundfile", None)  # `import soundfile` now raises ImportError
    samples, rate = read_audio(tmp_path / "float.wav")
    assert rate == 8000 and np.allclose(samples, tone(8000))
    samples, _ = read_audio(tmp_path / "ints.wav")
    assert np.allclose(samples, tone(8000), atol=1e-4)
    with pytest.raises(DatasetError, match="over the limit of 0.25 s"):
        mmzoo.load_audio(tmp_path / "ints.wav", limits={"audio_seconds": 0.25})


def test_load_image_decodes_under_the_limits_and_names_the_file(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((6, 4, 4), 200, np.uint8), mode="RGBA").save(tmp_path / "a.png")
    image = mmzoo.load_image(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (4, 6)  # alpha dropped unless asked for
    assert mmzoo.load_image(str(tmp_path / "a.png"), "L").mode == "L"
    with pytest.raises(DatasetError, match=r"a.png: image of 4x6 = 24 pixels is over the limit of 10 pixels"):
        mmzoo.load_image(tmp_path / "a.png", limits={"image_pixels": 10})
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*b.png: UnidentifiedImageError"):
        mmzoo.load_image(tmp_path / "b.png")
    with pytest.raises(DatasetError, match=r"image file .*c.png does not exist"):
        mmzoo.load_image(tmp_path / "c.png")
