"""train -> push -> pull in a fresh process -> `mmzoo predict` on raw files (a PNG and a WAV written to
disk) gives the labels and scores the trained model gave; and `mmzoo predict --data` over a dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.cli import main
from mmzoo.data.audio import write_wav
from mmzoo.data.mnist import DIGIT_WORDS
from mmzoo.train.config import validate_config
from mmzoo.train.trainer import train
from tests.data.support import SMALL_BANK
from tests.support import REPO, run_cli

SPEC = {
    "encoders": {
        "image": {"type": "cnn", "in_channels": 1, "image_size": 28, "channels": [8, 16], "output_dim": 16},
        "audio": {"type": "mel-cnn", "n_mels": 16, "channels": [8, 16], "output_dim": 16, "max_seconds": 1.0},
    },
    "fusion": {"type": "concat", "dim": 32},
    "head": {"type": "classification", "num_classes": 10},
}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A run trained by the trainer on av-digits (image + speech), and a test example written as files."""
    folder = tmp_path_factory.mktemp("digits")
    params = {**SMALL_BANK, "limit": 256}
    config = {
        "model": SPEC,
        "data": {"train": {"dataset": "av-digits", "split": "train", "params": params},
                 "eval": {"dataset": "av-digits", "split": "test", "params": {**SMALL_BANK, "limit": 32}},
                 "batch_size": 16},
        "optim": {"name": "adamw", "lr": 3.0e-3, "steps": 16},
        "output_dir": str(folder / "run"),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(validate_config(config))
    finally:
        torch.set_num_threads(threads)
    example = mmzoo.create_dataset("av-digits", split="test", limit=1, **SMALL_BANK)[0]
    from PIL import Image

    Image.fromarray(example["image"]).save(folder / "digit.png")
    write_wav(folder / "digit.wav", example["audio"]["array"], example["audio"]["sampling_rate"])
    return folder


def test_a_pushed_model_predicts_on_raw_files_in_a_fresh_process_as_the_trained_one_did(digits_run, mmzoo_hub):
    run, png, wav = digits_run / "run", digits_run / "digit.png", digits_run / "digit.wav"
    trained = mmzoo.create_model(str(run / "model"))
    assert trained.labels == DIGIT_WORDS
    expected = trained.predict({"image": png, "audio": wav}, top_k=3)

    assert main(["push", str(run), "mmzoo-tester/digits"]) == 0
    env = {**mmzoo_hub.env, "PYTHONPATH": str(REPO)}
    done = run_cli("predict", "hf-hub:mmzoo-tester/digits", "--input", f"image={png}", "--input", f"audio={wav}",
                   "--top-k", "3", "--json", env=env, cwd=digits_run)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["inputs"] == {"image": str(png), "audio": str(wav)}
    assert report["prediction"]["labels"] == list(expected.labels)
    assert report["prediction"]["scores"] == pytest.approx(list(expected.scores), abs=1e-5)
    assert report["prediction"]["named"] is True and set(report["prediction"]["labels"]) <= set(DIGIT_WORDS)

    table = run_cli("predict", "hf-hub:mmzoo-tester/digits", "--input", f"image={png}", "--input", f"audio={wav}",
                    env=env, cwd=digits_run)
    assert table.returncode == 0 and table.stdout.split()[0] == expected.label


def test_predict_over_a_dataset_writes_one_json_line_per_example(digits_run, capsys):
    run, out = digits_run / "run", digits_run / "preds.jsonl"
    params = [f"--param={key}={json.dumps(value)}" for key, value in SMALL_BANK.items()]
    assert main(["predict", str(run), "--data", "av-digits", *params, "--split", "test", "--max-examples", "5",
                 "--out", str(out), "--top-k", "2", "--batch-size", "2"]) == 0
    assert "wrote 5 predictions" in capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    data = mmzoo.create_dataset("av-digits", split="test", limit=5, **SMALL_BANK)
    model = mmzoo.create_model(str(run / "model"))
    expected = model.predict([data[i] for i in range(5)], top_k=2)
    assert [line["index"] for line in lines] == list(range(5))
    assert [line["target"] for line in lines] == [DIGIT_WORDS[data[i]["target"]] for i in range(5)]
    for line, prediction in zip(lines, expected):
        assert line["prediction"]["labels"] == list(prediction.labels)
        assert line["prediction"]["scores"] == pytest.approx(list(prediction.scores), abs=1e-6)


def test_predict_keeps_a_manifests_rows_and_ids(tmp_path, capsys):
    from PIL import Image

    spec = {"encoders": {"image": {"type": "cnn", "channels": [4], "output_dim": 8, "image_size": 16}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    model.labels = ["dark", "light"]
    model.save_pretrained(tmp_path / "model")
    for name, value in (("a.png", 10), ("b.png", 240)):
        Image.fromarray(np.full((12, 12, 3), value, np.uint8)).save(tmp_path / name)
    (tmp_path / "new.csv").write_text("image,id\na.png,first\nb.png,second\n", encoding="utf-8")
    assert main(["predict", str(tmp_path / "model"), "--data", "manifest", "--param",
                 f"path={tmp_path / 'new.csv'}", "--param", "target=null"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["id"], line["row"]["line"]) for line in lines] == [("first", 2), ("second", 3)]
    assert lines[0]["row"]["file"] == str(tmp_path / "new.csv") and "target" not in lines[0]


def test_predict_cli_mistakes_are_one_line_errors(digits_run, capsys):
    run, png = str(digits_run / "run"), str(digits_run / "digit.png")
    cases = [
        (["predict", run], "give either --input KEY=VALUE"),
        (["predict", run, "--input", "image=nothere.png", "--input", f"audio={png}"],
         "'nothere.png' does not exist; the 'image' encoder reads image files"),
        (["predict", run, "--input", f"imge={png}"], "Did you mean 'image'?"),
        (["predict", run, "--input", f"image={png}", "--param", "x=1"], "--param sets a dataset parameter"),
        (["predict", run, "--input", f"image={png}", "--top-k", "0"], "--top-k: expected a positive integer"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error: ") and "Traceback" not in err


def test_predict_with_an_input_left_out_uses_the_missing_modality_path(digits_run, capsys):
    """concat handles missing inputs (a learned absent embedding): one input is enough; a fusion that
    does not handle them needs every input, and the error says so."""
    from types import SimpleNamespace

    from mmzoo.errors import ConfigError
    from mmzoo.inference.inputs import parse_inputs

    run, png = str(digits_run / "run"), str(digits_run / "digit.png")
    assert main(["predict", run, "--input", f"image={png}", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    model = mmzoo.create_model(str(digits_run / "run" / "model"))
    expected = model.predict({"image": png})
    assert alone["prediction"]["label"] == expected.label
    assert abs(alone["prediction"]["score"] - expected.score) < 1e-5

    strict = SimpleNamespace(encoders=model.encoders, fusion=SimpleNamespace(part_name="old-fusion"))
    with pytest.raises(ConfigError, match=r"give a value for audio too \(--input audio=\.\.\.\) \(its fusion, "
                                          r"old-fusion, needs every input\)"):
        parse_inputs(strict, [f"image={png}"])
