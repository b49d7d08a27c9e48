"""``mmzoo explain``: inputs by file, the printed report, JSON numbers and the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import mmzoo
from mmzoo.cli import main
from mmzoo.data.audio import write_wav


@pytest.fixture
def saved(tmp_path):
    """A saved image + audio + text model with class names, and one input file of each kind."""
    torch.manual_seed(0)
    model = mmzoo.create_model({
        "encoders": {"image": {"type": "cnn", "channels": [4], "output_dim": 8, "image_size": 16},
                     "audio": {"type": "mel-cnn", "n_mels": 16, "channels": [4], "output_dim": 8},
                     "text": {"type": "byte-gru", "embed_dim": 4, "hidden_dim": 4, "output_dim": 8}},
        "fusion": {"type": "attention", "dim": 8, "heads": 2},
        "head": {"type": "classification", "num_classes": 3}})
    model.labels = ["cat", "dog", "bird"]
    model.save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    write_wav(tmp_path / "bark.wav", 0.3 * np.sin(np.arange(8000) * 0.2), 16000)
    (tmp_path / "caption.txt").write_text("a small dog", encoding="utf-8")
    return tmp_path


def test_explain_prints_shapley_values_and_writes_a_chart_a_heat_map_and_json(saved, capsys):
    out = saved / "why"
    args = ["explain", str(saved / "model"), "--input", f"image={saved / 'photo.png'}",
            "--input", f"audio={saved / 'bark.wav'}", "--input", f"text=@{saved / 'caption.txt'}",
            "--out", str(out), "--steps", "8"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "explains   '" in printed and "Shapley values (they add up to" in printed
    assert "text: strongest" in printed and f"image heat map: {out / 'example-0-image-heatmap.png'}" in printed
    report = json.loads((out / "explanation.json").read_text())
    assert report["label"] in ("cat", "dog", "bird") and report["present"] == ["image", "audio", "text"]
    assert abs(sum(report["shapley"].values()) - (report["score"] - report["baseline"])) < 1e-5
    assert [w["word"] for w in report["tokens"]["text"]["words"]] == ["a", "small", "dog"]
    for name in ("example-0-shapley.png", "example-0-image-heatmap.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and min(img.size) > 100
            assert img.getextrema() != ((255, 255), (255, 255), (255, 255), (255, 255))  # not blank


def test_json_output_and_a_missing_input(saved, capsys):
    out = saved / "why"
    assert main(["explain", str(saved / "model"), "--input", f"audio={saved / 'bark.wav'}", "--json",
                 "--out", str(out), "--no-within"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["present"] == ["audio"] and report["shapley"]["image"] == 0.0 and report["shapley"]["text"] == 0.0
    assert report["shapley"]["audio"] == pytest.approx(report["score"] - report["baseline"], abs=1e-5)
    assert report["images"] == {} and report["inputs"] == {"audio": str(saved / "bark.wav")}
    assert report["subsets"]["audio"] == pytest.approx(report["score"])


@pytest.mark.parametrize(("inputs", "message"), [
    (["imag=x.png"], "the model has no input 'imag'; its inputs are image, audio, text. Did you mean 'image'?"),
    (["image"], "expected KEY=VALUE"),
    ([], "give at least one --input KEY=VALUE"),
    (["image=nowhere.png"], "--input image: nowhere.png is not a file"),
    (["text=a", "text=b"], "'text' is given twice"),
])
def test_input_mistakes_are_one_line_errors(saved, capsys, inputs, message):
    args = ["explain", str(saved / "model"), "--out", str(saved / "why")]
    for item in inputs:
        args += ["--input", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
