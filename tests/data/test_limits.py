"""Resource bombs in data files and raw examples: bounded, and each a DatasetError saying where."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mmzoo
from mmzoo.data.limits import DataLimits, data_limits, json_depth
from mmzoo.errors import DatasetError
from mmzoo.parts.encoders.cnn import CNNEncoder
from mmzoo.parts.encoders.mel_cnn import MelCNNEncoder
from tests.hostile_data import GIB, memory_cap, nested_json, write_png, write_wav


def manifest(folder, text: str, name: str = "data.csv", **params):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return mmzoo.create_dataset("manifest", path=str(path), **params)


def test_a_wav_declared_at_1_hz_is_refused_before_resampling_asks_for_gigabytes(tmp_path):
    write_wav(tmp_path / "slow.wav", rate=1, frames=200_000)  # 200,000 s; at 16 kHz 3.2e9 samples (31 GiB)
    data = manifest(tmp_path, "audio,target\nslow.wav,1\n", sample_rate=16000)
    with memory_cap(), pytest.raises(DatasetError) as exc:
        data[0]
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / 'data.csv'} line 2, column 'audio': ")
    assert "slow.wav" in message and "lasts 200000 s, over the limit of 600 s" in message
    assert "MMZOO_MAX_AUDIO_SECONDS" in message and "limits={'audio_seconds'" in message


def test_a_wav_with_a_sample_rate_of_zero_is_a_clean_error(tmp_path):
    write_wav(tmp_path / "zero.wav", rate=0, frames=100)
    for params in ({"sample_rate": 16000}, {}):
        data = manifest(tmp_path, "audio,target\nzero.wav,1\n", **params)
        unreadable = r"zero.wav is not an? (audio|WAV) file (soundfile|scipy) can read"  # the decoder refuses rate 0
        with pytest.raises(DatasetError, match=r"line 2, column .audio.: .*" + unreadable):
            data[0]


def test_audio_limits_are_raised_by_the_dataset_parameter_or_the_environment(tmp_path, monkeypatch):
    write_wav(tmp_path / "long.wav", rate=8000, frames=8000 * 3)
    text = "audio,target\nlong.wav,1\n"
    with pytest.raises(DatasetError, match="lasts 3 s, over the limit of 2 s"):
        manifest(tmp_path, text, limits={"audio_seconds": 2})[0]
    assert manifest(tmp_path, text, limits={"audio_seconds": 4})[0]["audio"]["array"].shape == (24000,)
    monkeypatch.setenv("MMZOO_MAX_AUDIO_SECONDS", "2.5")
    with pytest.raises(DatasetError, match="over the limit of 2.5 s"):
        manifest(tmp_path, text)[0]
    assert manifest(tmp_path, text, limits={"audio_seconds": 10})[0]["target"] == 1  # the parameter wins
    monkeypatch.setenv("MMZOO_MAX_SAMPLE_RATE", "4000")
    with pytest.raises(DatasetError, match="sampling rate 8000 Hz is over the limit of 4000 Hz"):
        manifest(tmp_path, text, limits={"audio_seconds": 10})[0]


def test_a_400_megapixel_png_is_a_dataset_error_not_a_decompression_bomb(tmp_path):
    write_png(tmp_path / "huge.png", 20_000, 20_000)
    data = manifest(tmp_path, "image,target\nhuge.png,1\n")
    with memory_cap(), pytest.raises(DatasetError) as exc:
        data[0]
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / 'data.csv'} line 2, column 'image': ") and "huge.png" in message
    assert "400000000 pixels" in message and "89478485 pixels" in message


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path):
    write_png(tmp_path / "big.png", 300, 200)
    text = "image,target\nbig.png,0\n"
    with pytest.raises(DatasetError, match=r"column 'image': .*big.png: image of 300x200 = 60000 pixels is over"):
        manifest(tmp_path, text, limits={"image_pixels": 50_000})[0]
    assert manifest(tmp_path, text, limits={"image_pixels": 60_000}, image_mode="L")[0]["image"].shape == (200, 300)


def test_a_json_line_nested_100k_deep_is_refused_before_parsing(tmp_path):
    text = '{"text": "fine", "target": 1}\n' + nested_json(100_000) + "\n"
    with pytest.raises(DatasetError) as exc:
        manifest(tmp_path, text, name="data.jsonl")
    assert str(exc.value).startswith(f"{tmp_path / 'data.jsonl'} line 2: JSON nested 100000 levels deep")
    assert "MMZOO_MAX_JSON_DEPTH" in str(exc.value)


def test_json_depth_is_a_limit_that_can_be_raised(tmp_path):
    row = '{"x": "short", "deep": ' + "[" * 70 + "1" + "]" * 70 + ', "target": 1}\n'
    with pytest.raises(DatasetError, match="line 1: JSON nested 71 levels deep"):
        manifest(tmp_path, row, name="data.jsonl")
    with pytest.raises(DatasetError, match="JSON nested too deeply for Python to parse"):
        manifest(tmp_path, '{"x": ' + nested_json(50_000) + "}\n", name="data.jsonl",
                 limits={"json_depth": 100_000})
    assert len(manifest(tmp_path, row, name="data.jsonl", limits={"json_depth": 80}, columns={"x": "x"})) == 1


def test_nested_list_cells_name_file_line_and_column(tmp_path):
    cell = nested_json(1000)
    with pytest.raises(DatasetError, match=r"data.csv line 2, column 'x': .* JSON nested 1000 levels deep"):
        manifest(tmp_path, f'x,target\n"{cell}",1\n', types={"x": "vector"})
    with pytest.raises(DatasetError, match=r"data.csv line 2, column 'target': .* JSON nested 1000 levels deep"):
        manifest(tmp_path, f'x,target\n1,"{cell}"\n', target_type="list")


def test_an_integer_longer_than_python_converts_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=r"data.jsonl line 1: invalid JSON \(Exceeds the limit"):
        manifest(tmp_path, '{"target": ' + "1" * 5000 + "}\n", name="data.jsonl")


def test_the_depth_scan_skips_brackets_inside_strings():
    assert json_depth('{"a": "[[[[[[", "b": [[1], {"c": "]]]"}]}')[0] == 3
    assert json_depth('"[\\"[[["') == (0, 0)
    DataLimits(json_depth=3).check_json('["[[[[[[[[[[[[[[[[[[["]')  # deep only inside the string


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"audio_secs": 10}, "limits: unknown limit 'audio_secs'.*Did you mean 'audio_seconds'"),
        ({"image_pixels": 0}, r"limits\['image_pixels'\] must be a positive integer"),
        ({"json_depth": 2.5}, r"limits\['json_depth'\] must be a positive integer"),
        ({"audio_seconds": "inf"}, r"limits\['audio_seconds'\] must be a positive number"),
    ],
)
def test_bad_limit_values_are_dataset_errors(tmp_path, limits, message):
    with pytest.raises(DatasetError, match=f"manifest: {message}"):
        manifest(tmp_path, "x,target\n1,1\n", limits=limits)


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("MMZOO_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DatasetError, match="MMZOO_MAX_IMAGE_PIXELS must be a positive integer, got 'lots'"):
        data_limits()


def test_mel_cnn_refuses_a_waveform_at_1_hz_instead_of_resampling_it():
    encoder = MelCNNEncoder(sample_rate=16000, max_seconds=None)
    bomb = {"array": np.zeros(200_000, np.float32), "sampling_rate": 1}
    with memory_cap(), pytest.raises(DatasetError) as exc:
        encoder.preprocess([{"array": np.zeros(800, np.float32), "sampling_rate": 8000}, bomb])
    assert "encoder 'mel-cnn': example 1: audio clip of 200000 samples at 1 Hz lasts 200000 s" in str(exc.value)
    clipped = MelCNNEncoder(sample_rate=16000, max_seconds=1.0)  # cut to 1 s before any resampling
    assert clipped.preprocess([bomb])["waveform"].shape == (1, 16000)


def test_cnn_checks_image_size_before_decoding_a_lazily_opened_file(tmp_path, monkeypatch):
    from PIL import Image

    write_png(tmp_path / "big.png", 12_000, 12_000)  # 144 MP: Pillow only warns
    encoder = CNNEncoder(channels=[4], output_dim=4, image_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        lazy = Image.open(tmp_path / "big.png")
    with memory_cap(GIB), pytest.raises(DatasetError, match="encoder 'cnn': example 0: image of 12000x12000"):
        encoder.preprocess([lazy])
    monkeypatch.setenv("MMZOO_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DatasetError, match="example 1: image of 40x30 = 1200 pixels is over the limit of 1000"):
        encoder.preprocess([np.zeros((20, 20, 3), np.uint8), np.zeros((30, 40, 3), np.uint8)])



def test_the_readme_states_the_limits_in_force():
    from mmzoo.data.limits import ENV
    from tests.support import REPO

    table = (REPO / "README.md").read_text(encoding="utf-8").split("**Data limits**")[1].split("\n\n")[1]
    defaults = DataLimits()
    for key, variable in ENV.items():
        row = next(line for line in table.splitlines() if f"`{variable}`" in line)
        assert f'limits={{"{key}": ...}}' in row
        assert f"| {int(getattr(defaults, key)):,}" in row or f" to {int(getattr(defaults, key)):,} Hz" in row
