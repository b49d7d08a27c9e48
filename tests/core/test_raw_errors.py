"""#15 point 11 (rest): what still escaped as a raw exception is one MmzooError saying what and where.

A broken pickle with ``allow_pickle=True``, a path too long for the file system or whose symbolic links
loop (given to create_model or a dataset), and a head's refusal of a target that came from a manifest (the
message names the file, line and column of the value).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

import mmzoo
from mmzoo.data.manifest import manifest
from mmzoo.errors import DatasetError, SpecError, WeightsError
from mmzoo.train.config import validate_config
from mmzoo.train.trainer import train

SPEC = {"encoders": {"x": {"type": "mlp", "in_dim": 3, "output_dim": 4}}, "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 3}}
LONG = "x" * 5000


# --- pickle checkpoints opted in with allow_pickle=True --------------------------------------------------


def pickled_model(tmp_path: Path, content: bytes) -> Path:
    mmzoo.create_model(SPEC).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(content)
    return tmp_path / "m"


def saved_bytes(obj, path: Path) -> bytes:
    torch.save(obj, path)
    return path.read_bytes()


def good_pickle(tmp_path: Path) -> bytes:
    return saved_bytes(mmzoo.create_model(SPEC).state_dict(), tmp_path / "good.bin")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "not-a-zip-pickle", "code", "not-a-state-dict"])
def test_a_broken_pickle_checkpoint_is_a_weights_error(tmp_path, corrupt):
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    content = {
        "truncated": lambda: good_pickle(tmp_path)[:200],
        "garbage": lambda: b"\x80\x04not a pickle at all",
        "not-a-zip-pickle": lambda: pickle.dumps({"x": [1, 2, 3]})[:-3],
        "code": lambda: pickle.dumps(Boom()),
        "not-a-state-dict": lambda: saved_bytes([torch.zeros(2)], tmp_path / "list.bin"),
    }[corrupt]()
    directory = pickled_model(tmp_path, content)
    with pytest.raises(WeightsError) as err:
        mmzoo.create_model(directory, allow_pickle=True)
    assert str(err.value).startswith(str(directory / "pytorch_model.bin"))
    expected = "holds list, not a state dict" if corrupt == "not-a-state-dict" else "cannot read this pickle checkpoint"
    assert expected in str(err.value) and not marker.exists()


# --- paths that cannot be looked at ----------------------------------------------------------------------


@pytest.fixture
def loop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    return "loop"


@pytest.mark.parametrize("source", [LONG, LONG + ".yaml", "local-dir:" + LONG, "LOOP", "LOOP/model",
                                    "local-dir:LOOP", "PATH-LONG", "PATH-LOOP"])
def test_a_path_too_long_or_looping_given_to_create_model_is_a_spec_error(loop, source):
    source = {"LOOP": loop, "LOOP/model": f"{loop}/model", "local-dir:LOOP": f"local-dir:{loop}",
              "PATH-LONG": Path(LONG), "PATH-LOOP": Path(loop)}.get(source, source)
    with pytest.raises(SpecError) as err:
        mmzoo.create_model(source)
    message = str(err.value)
    assert "unusable as a path (" in message and ("File name too long" in message or "symbolic links" in message)
    assert len(message) < 500  # a 5000-character name is cut short in the message


@pytest.mark.parametrize("path", [LONG + ".csv", "loop/data.csv"])
def test_a_path_too_long_or_looping_given_to_a_dataset_is_a_dataset_error(loop, path):
    for build in (lambda: manifest(path=path), lambda: mmzoo.create_dataset("manifest", path=path)):
        with pytest.raises(DatasetError, match=r"cannot use this path \((File name too long|Too many levels)"):
            build()


def test_a_file_named_in_a_manifest_that_cannot_be_looked_at_names_the_row(loop, tmp_path):
    (tmp_path / "data.csv").write_text(f"image,target\n{LONG}.png,0\n")
    with pytest.raises(DatasetError, match=r"data.csv line 2, column 'image': cannot use the file named there"):
        manifest(path=str(tmp_path / "data.csv"), types={"image": "image"})


# --- head target errors name the manifest row ------------------------------------------------------------

ROWS = "x,label\n\"[0.1, 0.2, 0.3]\",0\n\"[1.0, 0.5, 0.0]\",2\n\"[0.3, 0.3, 0.3]\",7\n\"[0.0, 0.0, 1.0]\",1\n"


def test_a_target_the_head_refuses_names_the_manifest_file_line_and_column(tmp_path):
    (tmp_path / "data.csv").write_text(ROWS)
    data = manifest(path=str(tmp_path / "data.csv"), target="label", types={"x": "vector"})
    model = mmzoo.create_model(SPEC)
    with pytest.raises(DatasetError) as err:
        model.preprocess([data[i] for i in range(4)])
    assert str(err.value).startswith(f"{tmp_path / 'data.csv'} line 4, column 'label': ")
    assert "target class 7 is out of range for num_classes=3" in str(err.value)
    assert model.preprocess([data[i] for i in (0, 1, 3)])["target"].tolist() == [0, 2, 1]
    plain = [dict(data[i]) for i in range(4)]  # examples without origins: the head's message as it was
    with pytest.raises(DatasetError, match=r"^classification|target class 7"):
        model.preprocess(plain)


def test_the_trainer_reports_the_manifest_row_of_a_bad_target(tmp_path):
    (tmp_path / "data.csv").write_text(ROWS)
    config = validate_config({
        "model": SPEC,
        "data": {"train": {"dataset": "manifest", "params": {"path": str(tmp_path / "data.csv"), "target": "label",
                                                              "types": {"x": "vector"}}},
                 "batch_size": 4, "shuffle": False},
        "optim": {"name": "sgd", "lr": 0.1, "steps": 1},
        "output_dir": str(tmp_path / "run"),
    })
    with pytest.raises(DatasetError, match=r"data.csv line 4, column 'label': .*target class 7 is out of range"):
        train(config)
