"""#15 point 2: a config.json read from a model directory or the Hub may not name local files.

Parts declare the parameters that are local paths (``path_params`` on their factory: the timm encoders'
``pretrained_file``/``checkpoint_path``/..., the ``hf/`` member and ``tokenizer``). Such a value is refused
when it comes from a loaded config, and accepted from the user's own code, spec files and registry YAML.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mmzoo
from mmzoo.errors import SpecError
from mmzoo.localpaths import local_path_reason
from tests.plugins.support import TINY_BERT

HEAD = {"type": "classification", "num_classes": 2}


def timm_spec(**params):
    return {"encoders": {"image": {"type": "timm/test_resnet", "img_size": 32, **params}}, "fusion": "concat",
            "head": HEAD}


def save_then_edit(tmp_path: Path, spec: dict, **part_changes) -> Path:
    """Save a model built from ``spec`` (user code: trusted), then change its config.json's first
    encoder as a hostile publisher would."""
    directory = tmp_path / "model"
    mmzoo.create_model(spec).save_pretrained(directory)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    encoder = next(iter(config["spec"]["encoders"].values()))
    encoder.update(part_changes)
    path.write_text(json.dumps(config))
    return directory


@pytest.fixture
def outside_checkpoint(tmp_path):
    """A real timm checkpoint of the same architecture, outside the model directory."""
    import timm
    from safetensors.torch import save_file

    path = tmp_path / "elsewhere" / "weights.safetensors"
    path.parent.mkdir()
    save_file(timm.create_model("test_resnet", num_classes=0).state_dict(), str(path))
    return path


@pytest.mark.parametrize("param", ["checkpoint_path", "pretrained_file"])
def test_timm_path_parameters_in_a_loaded_config_are_refused(tmp_path, outside_checkpoint, param):
    """Before: timm read ``checkpoint_path`` from the config even though the model has its own weights."""
    directory = save_then_edit(tmp_path, timm_spec(), **{param: str(outside_checkpoint)})
    with pytest.raises(SpecError) as err:
        mmzoo.create_model(directory)
    message = str(err.value)
    assert message.startswith(f"{directory}: config.json spec.encoders.image.{param}: '{outside_checkpoint}' is an "
                              f"absolute path. A model's config.json (from a model directory or the Hub) may not "
                              f"name local files")
    with pytest.raises(SpecError, match=f"encoders.image.{param}"):
        mmzoo.create_model(f"local-dir:{directory}")


def test_a_path_nested_in_a_timm_pretrained_config_overlay_is_refused(tmp_path, outside_checkpoint):
    directory = save_then_edit(tmp_path, timm_spec(), pretrained_cfg_overlay={"file": str(outside_checkpoint)})
    with pytest.raises(SpecError, match=r"encoders\.image\.pretrained_cfg_overlay\.file: '.*' is an absolute path"):
        mmzoo.create_model(directory)


def test_the_same_paths_are_accepted_from_the_users_own_code(tmp_path, outside_checkpoint, monkeypatch):
    built = mmzoo.create_model(timm_spec(pretrained_file=str(outside_checkpoint)))
    expected = load_file(str(outside_checkpoint))["conv1.0.weight"]
    assert torch.equal(built.encoders["image"].model.conv1[0].weight, expected)  # the file was read
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps(timm_spec(checkpoint_path=str(outside_checkpoint))))
    mmzoo.create_model(spec_file)
    # an override in the caller's code replaces what the config said, and is trusted like any user code
    directory = save_then_edit(tmp_path, timm_spec(), pretrained_file="/etc/passwd")
    loaded = mmzoo.create_model(directory, encoders={"image": {"pretrained_file": str(outside_checkpoint)}})
    assert loaded.load_report.part("encoders.image").status == "loaded"


@pytest.mark.parametrize("param", ["pretrained_file", "checkpoint_path"])
def test_a_model_started_from_a_local_weights_file_saves_a_config_that_reloads(tmp_path, outside_checkpoint,
                                                                              param):
    """The initial-weights file is the user's; the saved model holds its own weights, so its config.json
    blanks the file (it would be refused there) and the directory reloads as it was saved."""
    model = mmzoo.create_model(timm_spec(**{param: str(outside_checkpoint)})).eval()
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["spec"]["encoders"]["image"][param] is None
    assert str(outside_checkpoint) not in (tmp_path / "saved" / "config.json").read_text()
    loaded = mmzoo.create_model(tmp_path / "saved").eval()
    image = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded.encoders["image"](image).pooled, model.encoders["image"](image).pooled)


def test_hub_repo_ids_and_relative_names_that_name_nothing_here_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in ("org/name", "sentence-transformers/all-MiniLM-L6-v2", "tiny-bert", "minilm", "timm/resnet18"):
        assert local_path_reason(value) is None, value
    for value, reason in (("/etc", "an absolute path"), ("../../x", "a path that climbs out with '..'"),
                          ("a/../../b", "a path that climbs out with '..'"), ("~/x", "a path in a home folder"),
                          ("file:///etc/passwd", "a file: URL"), ("C:\\x", "an absolute path"),
                          ("..\\x", "a path that climbs out with '..'")):
        assert local_path_reason(value) == reason, value
    (tmp_path / "org" / "here").mkdir(parents=True)
    assert local_path_reason("org/here") == "an existing local file or folder"


# --- hf/: the member and the tokenizer ---------------------------------------------------------------


@pytest.fixture
def bert_folder(tmp_path):
    """A tiny BERT saved by transformers (config and random weights), outside any mmzoo model."""
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    config = BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def hf_spec(member: str, **params):
    return {"encoders": {"text": {"type": f"hf/{member}", "tokenizer": "bytes", **params}}, "fusion": "concat",
            "head": HEAD}


@pytest.mark.parametrize("member", ["/etc", "//etc", "../../..", "ABSOLUTE", "RELATIVE", "UP"])
def test_an_hf_member_that_is_a_local_path_is_refused_from_a_loaded_config(tmp_path, bert_folder, monkeypatch,
                                                                           member):
    directory = save_then_edit(tmp_path, hf_spec(str(bert_folder)))  # from user code: accepted
    monkeypatch.chdir(tmp_path)
    member = {"ABSOLUTE": str(bert_folder), "RELATIVE": "bert", "UP": os.path.relpath(bert_folder, directory)
              }.get(member, member)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config["spec"]["encoders"]["text"]["type"] = f"hf/{member}"
    path.write_text(json.dumps(config))
    with pytest.raises(SpecError) as err:
        mmzoo.create_model(directory)
    assert f"config.json spec.encoders.text.type: 'hf/{member}' names " in str(err.value)
    assert "may not name local files" in str(err.value)


def test_an_hf_tokenizer_folder_is_refused_from_a_loaded_config(tmp_path, bert_folder):
    spec = {"encoders": {"text": {"type": "hf/tiny-bert", "config": TINY_BERT, "tokenizer": "bytes"}},
            "fusion": "concat", "head": HEAD}
    directory = save_then_edit(tmp_path, spec, tokenizer=str(bert_folder))
    with pytest.raises(SpecError, match=r"spec\.encoders\.text\.tokenizer: '.*bert' is an absolute path"):
        mmzoo.create_model(directory)


def test_a_model_saved_from_a_local_hf_folder_rebuilds_from_code_not_from_its_config(tmp_path, bert_folder):
    """The honest limit of the rule: the saved config names a local folder, so the directory alone is
    refused; naming that part again in the user's own code (an override of its type) loads the weights."""
    model = mmzoo.create_model(hf_spec(str(bert_folder))).eval()
    model.save_pretrained(tmp_path / "saved")
    with pytest.raises(SpecError, match=r"names an absolute path.*give that part again in your code"):
        mmzoo.create_model(tmp_path / "saved")
    again = mmzoo.create_model(tmp_path / "saved", encoders={"text": {"type": f"hf/{bert_folder}"}}).eval()
    assert again.load_report.complete
    examples = again.preprocess([{"text": "a cat"}, {"text": "two dogs"}])
    with torch.no_grad():
        assert torch.equal(again(examples).outputs, model(examples).outputs)
    # naming the type again is what trusts it: a parameter override alone does not
    with pytest.raises(SpecError, match="names an absolute path"):
        mmzoo.create_model(tmp_path / "saved", encoders={"text": {"max_length": 8}})


def test_the_path_params_contract_is_declared_by_the_first_party_plugins():
    from mmzoo.localpaths import declared_path_params, member_parameter
    from mmzoo.plugins import get_registry

    registry = get_registry()
    timm = registry.resolve("encoder", "timm/resnet18").factory()
    assert {"pretrained_file", "checkpoint_path"} <= set(declared_path_params(timm))
    hf = registry.resolve("encoder", "hf/org/name").factory()
    assert member_parameter(hf) in declared_path_params(hf) and "tokenizer" in declared_path_params(hf)
    lite0 = registry.resolve("encoder", "efficientnet-lite0").factory()
    assert "checkpoint_path" in declared_path_params(lite0)
    assert declared_path_params(registry.resolve("encoder", "mlp").factory()) == ()
