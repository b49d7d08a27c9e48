"""`mmzoo info` on every kind of source: what weights are there, labels, metrics, training, expected inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mmzoo
from mmzoo.cli import main
from mmzoo.hub import download_registry_weights, push_to_hub, sha256_of
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import set_offline, tiny_model, train_digits_run, train_steps

pytestmark = pytest.mark.hub

# A third-party encoder that describes its raw input itself (duck-typed like mmzoo.RawInput).
RAW_PLUGIN = '''
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_encoder("fixture-photo", "fixture_raw_parts:PhotoEncoder", modality="image")
'''
RAW_PARTS = '''
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class PhotoInput:
    kind: str = "image"
    size: tuple = (32, 32)
    channels: int = 3
    sample_rate: int | None = None
    max_length: int | None = None
    accepts: tuple = ("path", "PIL image", "HWC uint8 array")
    description: str = "RGB photo, resized to 32x32"


class PhotoEncoder(nn.Module):
    raw_input = PhotoInput()

    def __init__(self, output_dim: int = 4):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Linear(3, output_dim)

    def preprocess(self, examples):
        return torch.zeros(len(examples), 3)

    def forward(self, x):
        return self.net(x)
'''


def info_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def info_text(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["info", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train_digits_run(tmp_path_factory.mktemp("runs") / "digits")


def test_info_on_a_run_dir_lists_its_model_and_checkpoints(digits_run: Path, capsys, tmp_path: Path):
    info = info_json(capsys, str(digits_run))
    assert info["source"] == "run" and info["run"]["steps"] == 8 and info["run"]["finished"] is True
    assert info["run"]["best"]["step"] == 4 and info["run"]["final_model"] == "last"
    weights = {w["file"]: w for w in info["weights"]}
    assert set(weights) == {"model/model.safetensors", "checkpoints/step-000004/model.safetensors",
                            "checkpoints/step-000008/model.safetensors"}
    assert weights["model/model.safetensors"]["step"] == 8
    assert weights["checkpoints/step-000004/model.safetensors"]["marks"] == ["best"]
    assert weights["checkpoints/step-000008/model.safetensors"]["marks"] == ["last"]
    size = (digits_run / "checkpoints" / "step-000004" / "model.safetensors").stat().st_size
    assert weights["checkpoints/step-000004/model.safetensors"]["size"] == size
    assert info["metrics"]["accuracy"] > 0 and info["datasets"] == ["sklearn-digits"]
    assert info["training"]["checkpoint"] == "last" and info["training"]["steps"] == 8
    assert set(info["inputs"]) == {"image", "vector"}
    assert info["inputs"]["vector"] == {"kind": "vector", "dim": 64, "accepts": ["array", "tensor", "list"],
                                        "description": "finite numbers, used as given", "declared": True}

    text = info_text(capsys, f"local-dir:{digits_run}")
    assert "none published" not in text
    assert "run: 8 steps, finished, final_model: last, best loss=" in text and "at step 4" in text
    assert "checkpoints/step-000004/model.safetensors" in text and "step 4, best" in text
    assert "training: weights from step 8, the last" in text

    stopped = tmp_path / "stopped"  # a run that never wrote model/: described from its config
    shutil.copytree(digits_run, stopped, ignore=shutil.ignore_patterns("model"))
    info = info_json(capsys, str(stopped))
    assert info["run"]["finished"] is False and info["spec"]["head"]["num_classes"] == 10
    assert [w["step"] for w in info["weights"]] == [4, 8] and info["metrics"] == {}


def test_info_on_a_model_dir_shows_weights_labels_and_metrics(capsys, tmp_path: Path):
    model = train_steps(tiny_model())
    model.labels = ["cat", "stocks", "rain"]
    model.provenance.update(metrics={"accuracy": 0.75}, datasets=["toy-pairs"])
    model.save_pretrained(tmp_path / "saved")
    info = info_json(capsys, str(tmp_path / "saved"))
    assert info["source"] == "model-dir" and info["labels"] == ["cat", "stocks", "rain"]
    assert info["weights"] == [{"file": "model.safetensors", "size": (tmp_path / "saved" / "model.safetensors").stat()
                                .st_size, "sha256": None, "format": "safetensors"}]
    assert info["metrics"] == {"accuracy": 0.75} and info["training"] == {"steps": 3}
    text = info_text(capsys, f"local-dir:{tmp_path / 'saved'}")
    assert "labels: 3 classes (cat, stocks, rain)" in text and "metrics on toy-pairs: accuracy=0.75" in text
    assert "model.safetensors  " in text and "none published" not in text


def test_info_on_a_hub_model_reads_config_json_only(hub: HubServer, capsys, monkeypatch):
    model = train_steps(tiny_model())
    model.labels = ["a", "b", "c"]
    pushed = push_to_hub(model, "org/described")
    info = info_json(capsys, "hf-hub:org/described")
    assert info["source"] == "hf-hub" and info["revision"] == pushed.revision and info["labels"] == ["a", "b", "c"]
    [weights] = info["weights"]
    assert weights["sha256"] == pushed.sha256 and weights["cached"] is False and weights["size"] > 0
    assert not [r for r in hub.requests if r.method == "GET" and r.path.endswith("/model.safetensors")]
    assert "not in the Hub cache" in info_text(capsys, "hf-hub:org/described")

    mmzoo.create_model("hf-hub:org/described")
    set_offline(monkeypatch)  # offline: the cache answers, the Hub is not asked
    before = len(hub.requests)
    info = info_json(capsys, f"hf-hub:org/described@{pushed.revision}")
    assert info["weights"][0]["cached"] is True and info["weights"][0]["sha256"] == pushed.sha256
    assert len(hub.requests) == before


def test_info_on_a_registry_model_with_weights_says_what_is_cached(hub: HubServer, install_plugin, capsys):
    pushed = push_to_hub(train_steps(tiny_model()), "org/zoo-weights")
    from tests.hub.support import SPEC

    spec = json.dumps({**SPEC, "weights": {"repo": "org/zoo-weights", "revision": pushed.revision,
                                           "file": "model.safetensors", "sha256": pushed.sha256}})
    install_plugin("mmzoo-fixture-zoo", {"fixture_zoo": f'''
import json
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_models(registry):
    registry.add_model("zoo-tiny", json.loads({spec!r}))
'''}, {"zoo": "fixture_zoo"})
    info = info_json(capsys, "zoo-tiny")
    [weights] = info["weights"]
    assert weights["sha256"] == pushed.sha256 and weights["cached"] is False
    assert weights["source"] == f"hf-hub:org/zoo-weights@{pushed.revision}"
    path = download_registry_weights({"repo": "org/zoo-weights", "revision": pushed.revision, "sha256": pushed.sha256})
    assert sha256_of(path) == pushed.sha256
    text = info_text(capsys, "zoo-tiny")
    assert f"sha256 {pushed.sha256}" in text and "in the Hub cache" in text and "not in the Hub cache" not in text


def test_info_shows_each_encoders_raw_input(install_plugin, capsys, tmp_path: Path):
    install_plugin("mmzoo-fixture-raw", {"fixture_raw": RAW_PLUGIN, "fixture_raw_parts": RAW_PARTS},
                   {"raw": "fixture_raw"})
    spec = {"encoders": {"photo": {"type": "fixture-photo"}, "caption": {"type": "byte-gru", "max_length": 64}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    info = info_json(capsys, str(tmp_path / "spec.yaml"))
    assert info["source"] == "spec-file"
    assert info["inputs"]["photo"] == {"kind": "image", "size": [32, 32], "channels": 3,
                                       "accepts": ["path", "PIL image", "HWC uint8 array"],
                                       "description": "RGB photo, resized to 32x32", "declared": True}
    assert info["inputs"]["caption"] == {"kind": "text", "max_length": 64, "accepts": ["text", "bytes"],
                                         "description": "UTF-8 bytes, no tokenizer", "declared": True}
    text = info_text(capsys, str(tmp_path / "spec.yaml"))
    assert ("photo: image, 3 channels, 32x32 (accepts path, PIL image, HWC uint8 array): RGB photo, resized to "
            "32x32\n") in text
    assert "caption: text, max length 64 (accepts text, bytes): UTF-8 bytes, no tokenizer\n" in text


def test_unknown_family_members_are_errors_with_close_matches(hub: HubServer, capsys):
    pytest.importorskip("timm")
    assert main(["info", "timm/resnet999"]) == 2
    error = capsys.readouterr().err
    assert "the timm/* family (from mmzoo-timm) has no member 'resnet999'. Did you mean 'timm/resnet" in error
    assert main(["info", "timm/resnet18.a1_in1k"]) == 0  # a pretrained tag is a member too
    assert "encoder timm/resnet18.a1_in1k" in capsys.readouterr().out

    pytest.importorskip("transformers")
    assert main(["info", "hf/org/no-such-model"]) == 2  # asked of the Hub (the local one here)
    assert "the hf/* family (from mmzoo-transformers) has no member 'org/no-such-model'" in capsys.readouterr().err
    push_to_hub(train_steps(tiny_model()), "org/some-repo")
    assert main(["info", "hf/org/some-repo"]) == 0
    assert "could not check" not in capsys.readouterr().out
